// yq v4's value operators: + - * (deep merge), comparisons and equality. Each follows the yq
// documentation (operators/add, subtract, multiply-merge, compare, equals) including its error
// wording, so a modifier fails in kiln where it fails in yq.

import {
  YNode,
  becomeEmpty,
  boolNode,
  copyNode,
  formatInt,
  nicePath,
  nul,
  parseYqInt,
  replacement,
  scalar,
  setEntry,
  updateFrom,
  newSeq,
  YqEvalFailure,
} from "./nodes.js";

export { YqEvalFailure } from "./nodes.js";

const fail = (msg: string): never => {
  throw new YqEvalFailure(msg);
};

const isNum = (tag: string): boolean => tag === "!!int" || tag === "!!float";

function floatResult(owner: YNode, v: number): YNode {
  return replacement(owner, scalar("!!float", String(v)));
}

function intOf(n: YNode): bigint {
  const v = parseYqInt(n.value);
  if (v === undefined) fail(`cannot parse '${n.value}' as an integer`);
  return v as bigint;
}

// ---- add -----------------------------------------------------------------------------------

export function add(lhs: YNode, rhs: YNode): YNode {
  if (lhs.tag === "!!null") return replacement(lhs, copyNode(rhs));
  switch (lhs.kind) {
    case "map": {
      if (rhs.kind !== "map") fail(`${rhs.tag} (${nicePath(rhs)}) cannot be added to a ${lhs.tag} (${nicePath(lhs)})`);
      const out = replacement(lhs, new YNode("map", lhs.tag));
      for (const [k, v] of lhs.entries) out.entries.set(k, v);
      for (const [k, v] of rhs.entries) out.entries.set(k, v); // replaces in place, or appends
      return out;
    }
    case "seq": {
      const out = replacement(lhs, newSeq([...lhs.items]));
      out.tag = lhs.tag;
      if (rhs.tag === "!!null") return out;
      if (rhs.kind === "seq") out.items = out.items.concat(rhs.items.map(copyNode));
      else out.items.push(copyNode(rhs));
      return out;
    }
    case "scalar": {
      if (rhs.kind !== "scalar") fail(`${rhs.tag} (${nicePath(rhs)}) cannot be added to a ${lhs.tag} (${nicePath(lhs)})`);
      if (lhs.tag === "!!str") return replacement(lhs, scalar("!!str", rhs.tag === "!!null" ? lhs.value : lhs.value + rhs.value));
      if (rhs.tag === "!!str") return replacement(lhs, scalar("!!str", lhs.value + rhs.value));
      if (lhs.tag === "!!int" && rhs.tag === "!!int") {
        return replacement(lhs, scalar("!!int", formatInt(intOf(lhs) + intOf(rhs), lhs.value)));
      }
      if (isNum(lhs.tag) && isNum(rhs.tag)) return floatResult(lhs, Number(lhs.value) + Number(rhs.value));
      return fail(`${lhs.tag} cannot be added to ${rhs.tag}`);
    }
  }
}

// ---- subtract ------------------------------------------------------------------------------

/** Structural identity used for array subtraction (yq's recursiveNodeEqual; map key order ignored). */
function canonical(n: YNode): string {
  if (n.kind === "seq") return `[${n.items.map(canonical).join(",")}]`;
  if (n.kind === "map") {
    const keys = [...n.entries.keys()].sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(n.entries.get(k)!)}`).join(",")}}`;
  }
  return n.tag === "!!null" ? "!!null" : `${n.tag} ${JSON.stringify(n.value)}`;
}

export function subtract(lhs: YNode, rhs: YNode): YNode {
  if (lhs.tag === "!!null") return replacement(lhs, copyNode(rhs));
  switch (lhs.kind) {
    case "map":
      return fail("maps not yet supported for subtraction");
    case "seq": {
      if (rhs.kind !== "seq") fail(`${rhs.tag} (${nicePath(rhs)}) cannot be subtracted from ${lhs.tag}`);
      const drop = new Set(rhs.items.map(canonical));
      const out = replacement(lhs, newSeq(lhs.items.filter((i) => !drop.has(canonical(i)))));
      out.tag = lhs.tag;
      return out;
    }
    case "scalar": {
      if (rhs.kind !== "scalar") fail(`${rhs.tag} (${nicePath(rhs)}) cannot be subtracted from ${lhs.tag}`);
      if (lhs.tag === "!!str") fail("strings cannot be subtracted");
      if (lhs.tag === "!!int" && rhs.tag === "!!int") {
        return replacement(lhs, scalar("!!int", formatInt(intOf(lhs) - intOf(rhs), lhs.value)));
      }
      if (isNum(lhs.tag) && isNum(rhs.tag)) return floatResult(lhs, Number(lhs.value) - Number(rhs.value));
      return fail(`${lhs.tag} cannot be added to ${rhs.tag}`); // (sic) yq's wording
    }
  }
}

// ---- multiply / deep merge -----------------------------------------------------------------

/** Assign `src` onto `target` the way yq's merge does: maps recurse key by key, anything else replaces. */
function mergeInto(target: YNode, src: YNode): void {
  if (src.kind !== "map") {
    updateFrom(target, src);
    return;
  }
  if (target.kind !== "map") becomeEmpty(target, "map");
  target.tag = src.tag;
  for (const [k, v] of src.entries) {
    let t = target.entries.get(k);
    if (!t) {
      t = nul();
      setEntry(target, k, t);
    }
    mergeInto(t, v);
  }
}

export function multiply(lhs: YNode, rhs: YNode): YNode {
  if (rhs.tag === "!!null") return copyNode(lhs);
  const collections =
    (lhs.kind === "map" && rhs.kind === "map") ||
    (lhs.kind === "seq" && rhs.kind === "seq") ||
    (lhs.tag === "!!null" && (rhs.kind === "map" || rhs.kind === "seq"));
  if (collections) {
    const out = copyNode(lhs);
    mergeInto(out, rhs);
    return out;
  }
  if (lhs.tag === "!!int" && rhs.tag === "!!int") {
    return replacement(lhs, scalar("!!int", formatInt(intOf(lhs) * intOf(rhs), lhs.value)));
  }
  if (isNum(lhs.tag) && isNum(rhs.tag)) return floatResult(lhs, Number(lhs.value) * Number(rhs.value));
  if ((lhs.tag === "!!str" && rhs.tag === "!!int") || (lhs.tag === "!!int" && rhs.tag === "!!str")) {
    const [s, n] = lhs.tag === "!!str" ? [lhs, rhs] : [rhs, lhs];
    const count = Number(intOf(n));
    if (count < 0) fail(`cannot repeat string by a negative number (${count})`);
    if (count > 10_000_000) fail(`cannot repeat string by more than 100 million (${count})`);
    return replacement(lhs, scalar(s.tag, s.value.repeat(count)));
  }
  return fail(`cannot multiply ${lhs.tag} with ${rhs.tag}`);
}

// ---- equality and comparison ---------------------------------------------------------------

/** yq's wildcard match for `==` and keys: `*` any run, `?` one character; '' only matches ''. */
export function globMatch(name: string, pattern: string): boolean {
  if (pattern === "") return name === "";
  if (pattern === "*") return true;
  let p = 0;
  let n = 0;
  let starP = -1;
  let starN = 0;
  while (n < name.length) {
    const c = pattern[p];
    if (p < pattern.length && c !== "*" && (c === "?" || c === name[n])) {
      p++;
      n++;
    } else if (p < pattern.length && c === "*") {
      starP = p++;
      starN = n;
    } else if (starP >= 0) {
      p = starP + 1;
      n = ++starN;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}

/** `==` (flip=false) and `!=` (flip=true); an absent side (no result) counts as null. */
export function equals(lhs: YNode | undefined, rhs: YNode | undefined, flip: boolean): YNode {
  let v: boolean;
  let owner: YNode | undefined;
  if (!lhs && !rhs) v = true;
  else if (!lhs) {
    v = rhs!.tag === "!!null";
    owner = rhs;
  } else if (!rhs) {
    v = lhs.tag === "!!null";
    owner = lhs;
  } else {
    owner = lhs;
    if (lhs.tag === "!!null") v = rhs.tag === "!!null";
    else v = lhs.kind === "scalar" && rhs.kind === "scalar" && globMatch(lhs.value, rhs.value);
  }
  return boolNode(owner, flip ? !v : v);
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

export interface CompareKind {
  greater: boolean;
  orEqual: boolean;
}

export function compare(lhs: YNode | undefined, rhs: YNode | undefined, k: CompareKind): YNode {
  if (!lhs && !rhs) return boolNode(undefined, k.orEqual);
  if (!lhs || !rhs) return boolNode(lhs ?? rhs, false);
  if (lhs.kind === "map") fail("maps not yet supported for comparison");
  if (lhs.kind === "seq") fail("arrays not yet supported for comparison");
  if (rhs.kind !== "scalar") fail(`${rhs.tag} (${nicePath(rhs)}) cannot be subtracted from ${lhs.tag}`); // (sic)
  const order = (c: number): boolean => (k.orEqual && c === 0) || (k.greater ? c > 0 : c < 0);
  let result: boolean;
  if ((lhs.tag === "!!str" && RFC3339.test(lhs.value)) || lhs.tag === "!!timestamp") {
    const a = Date.parse(lhs.value);
    const b = Date.parse(rhs.value);
    if (Number.isNaN(b)) fail(`parsing time "${rhs.value}" as RFC3339 failed`);
    result = order(Math.sign(a - b));
  } else if (lhs.tag === "!!int" && rhs.tag === "!!int") {
    const a = intOf(lhs);
    const b = intOf(rhs);
    result = order(a === b ? 0 : a > b ? 1 : -1);
  } else if (isNum(lhs.tag) && isNum(rhs.tag)) {
    result = order(Math.sign(Number(lhs.value) - Number(rhs.value)));
  } else if (lhs.tag === "!!str" && rhs.tag === "!!str") {
    result = order(Buffer.compare(Buffer.from(lhs.value), Buffer.from(rhs.value)));
  } else if (lhs.tag === "!!null" && rhs.tag === "!!null" && k.orEqual) {
    result = true;
  } else if (lhs.tag === "!!null" || rhs.tag === "!!null") {
    result = false;
  } else {
    return fail(`${lhs.tag} not yet supported for comparison`);
  }
  return boolNode(lhs, result);
}
