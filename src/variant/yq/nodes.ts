// The document model the evaluator works on. It mirrors yq's candidate nodes: every node is a
// mutable object that knows its parent and its key, scalars keep their text (`value`) and a YAML
// tag, and assignments update nodes in place. That in-place model is what gives yq its
// observable behaviour (e.g. `(.a // (.a = 0)) += 1`), so kiln reproduces it rather than using
// immutable JS values.

/** Thrown by the value operators and updates; the evaluator turns it into E_YQ_EVAL at the operator's position. */
export class YqEvalFailure extends Error {}

export type Kind = "scalar" | "seq" | "map";

/** Scalars (most nodes) share these instead of allocating; writing to them throws. */
const NO_ITEMS: YNode[] = Object.freeze([]) as unknown as YNode[];
class NoEntries extends Map<string, YNode> {
  override set(): this {
    throw new Error("internal: a scalar node has no entries");
  }
}
const NO_ENTRIES: Map<string, YNode> = new NoEntries();

export class YNode {
  kind: Kind;
  tag: string;
  /** Scalar text as yq keeps it ("1", "true", "null", "abc"); "" for collections. */
  value: string;
  /** Elements of a sequence. */
  items: YNode[];
  /** Entries of a map, in document order. */
  entries: Map<string, YNode>;
  parent: YNode | undefined;
  /** Key in the parent: a string in a map, an index in a sequence. */
  key: string | number | undefined;
  /** Set on what `key` returns: the node whose key this is, so that assigning to it renames the entry (as in yq). */
  keyOf?: YNode;

  constructor(kind: Kind, tag: string, value = "") {
    this.kind = kind;
    this.tag = tag;
    this.value = value;
    this.items = kind === "seq" ? [] : NO_ITEMS;
    this.entries = kind === "map" ? new Map() : NO_ENTRIES;
  }
}

export const scalar = (tag: string, value: string): YNode => new YNode("scalar", tag, value);
export const str = (value: string): YNode => scalar("!!str", value);
export const nul = (): YNode => scalar("!!null", "null");
export const intNode = (n: number | bigint): YNode => scalar("!!int", String(n));
export const newSeq = (items: YNode[] = []): YNode => {
  const n = new YNode("seq", "!!seq");
  n.items = items;
  return n;
};
export const newMap = (): YNode => new YNode("map", "!!map");

/** A result that stands in for `owner` (yq's CreateReplacement): same parent and key. */
export function replacement(owner: YNode | undefined, node: YNode): YNode {
  node.parent = owner?.parent;
  node.key = owner?.key;
  return node;
}

export const boolNode = (owner: YNode | undefined, v: boolean): YNode => replacement(owner, scalar("!!bool", v ? "true" : "false"));

export function adopt(parent: YNode, child: YNode, key: string | number): YNode {
  child.parent = parent;
  child.key = key;
  return child;
}

export function appendItem(seq: YNode, child: YNode): void {
  adopt(seq, child, seq.items.length);
  seq.items.push(child);
}

/** A new array that owns `items` (new nodes, not the document's): their parent is it. */
export function ownSeq(items: YNode[]): YNode {
  const seq = newSeq();
  for (const x of items) appendItem(seq, x);
  return seq;
}

export function setEntry(map: YNode, key: string, child: YNode): void {
  adopt(map, child, key);
  map.entries.set(key, child);
}

export function reindex(seq: YNode): void {
  seq.items.forEach((c, i) => adopt(seq, c, i));
}

/** Deep copy; the copy keeps the original's parent and key (yq's Copy). */
export function copyNode(n: YNode): YNode {
  const c = new YNode(n.kind, n.tag, n.value);
  c.parent = n.parent;
  c.key = n.key;
  if (n.kind === "seq") for (const item of n.items) appendItem(c, copyNode(item));
  else if (n.kind === "map") for (const [k, v] of n.entries) setEntry(c, k, copyNode(v));
  return c;
}

/** Turn `n` into a (copy of) `other` in place, keeping n's identity, parent and key (yq's UpdateFrom); a key (from `key`) renames its entry. */
export function updateFrom(n: YNode, other: YNode): void {
  if (n === other) return;
  if (n.keyOf) renameKey(n.keyOf, other);
  const items = other.kind === "seq" ? other.items.map(copyNode) : [];
  const entries = other.kind === "map" ? [...other.entries].map(([k, v]) => [k, copyNode(v)] as const) : [];
  n.kind = other.kind;
  n.tag = other.tag;
  n.value = other.value;
  n.items = other.kind === "seq" ? [] : NO_ITEMS;
  n.entries = other.kind === "map" ? new Map() : NO_ENTRIES;
  for (const item of items) appendItem(n, item);
  for (const [k, v] of entries) setEntry(n, k, v);
}

/** Give the entry of `owner` in its map the key `to`, keeping its place (`(.a.x | key) = "y"`). */
function renameKey(owner: YNode, to: YNode): void {
  const map = owner.parent;
  if (!map || map.kind !== "map") throw new YqEvalFailure(`cannot change the key of ${map ? "an array element (its index)" : "a top-level value"}`);
  if (to.kind !== "scalar") throw new YqEvalFailure(`map keys must be scalars, not ${to.tag}`);
  const from = String(owner.key);
  if (to.value === from) return;
  if (map.entries.has(to.value)) throw new YqEvalFailure(`cannot rename key '${from}' to '${to.value}': the map already has that key`);
  const entries = [...map.entries];
  map.entries.clear();
  for (const [k, v] of entries) setEntry(map, v === owner ? to.value : k, v);
}

/** Make `n` an empty map or sequence in place (auto-vivification of nulls). */
export function becomeEmpty(n: YNode, kind: "seq" | "map"): void {
  n.kind = kind;
  n.tag = kind === "seq" ? "!!seq" : "!!map";
  n.value = "";
  n.items = kind === "seq" ? [] : NO_ITEMS;
  n.entries = kind === "map" ? new Map() : NO_ENTRIES;
}

export function isTruthy(n: YNode): boolean {
  if (n.tag === "!!null") return false;
  if (n.kind === "scalar" && n.tag === "!!bool") return n.value.toLowerCase() === "true";
  return true;
}

/** yq's parseInt64: decimal, 0x hex or 0o octal; undefined when not an integer. */
export function parseYqInt(s: string): bigint | undefined {
  try {
    if (/^0[xX][0-9A-Fa-f]+$/.test(s)) return BigInt(s.toLowerCase());
    if (/^0o[0-7]+$/.test(s)) return BigInt(s);
    if (/^[+-]?\d+$/.test(s)) return BigInt(s);
  } catch {
    return undefined;
  }
  return undefined;
}

/** Format an integer result the way the left operand was written (yq keeps hex and octal). */
export function formatInt(n: bigint, like: string): string {
  if (/^0[xX]/.test(like)) return (n < 0n ? "-0x" : "0x") + (n < 0n ? -n : n).toString(16).toUpperCase();
  if (/^0o/.test(like)) return (n < 0n ? "-0o" : "0o") + (n < 0n ? -n : n).toString(8);
  return n.toString();
}

/** The path of a node as yq prints it in messages (a.b[0].c). */
export function nicePath(n: YNode): string {
  const parts: Array<string | number> = [];
  for (let c: YNode | undefined = n; c && c.key !== undefined; c = c.parent) parts.unshift(c.key);
  let s = "";
  parts.forEach((p, i) => {
    if (typeof p === "number") s += `[${p}]`;
    else if (i === 0) s += p;
    else if (p.includes(".")) s += `[${p}]`;
    else s += `.${p}`;
  });
  return s;
}

export function fromJS(v: unknown): YNode {
  if (v === null || v === undefined) return nul();
  switch (typeof v) {
    case "string":
      return str(v);
    case "boolean":
      return scalar("!!bool", v ? "true" : "false");
    case "number":
      return scalar(Number.isInteger(v) ? "!!int" : "!!float", String(v));
    case "bigint":
      return scalar("!!int", v.toString());
  }
  if (Array.isArray(v)) {
    return ownSeq(v.map(fromJS));
  }
  if (v instanceof Map) {
    const map = newMap();
    for (const [k, val] of v) setEntry(map, String(k), fromJS(val));
    return map;
  }
  if (v instanceof Date) return scalar("!!timestamp", v.toISOString());
  if (typeof v === "object") {
    const map = newMap();
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) setEntry(map, k, fromJS(val));
    return map;
  }
  throw new Error(`cannot use a value of type ${typeof v} in a YAML document`);
}

export function toJS(n: YNode): unknown {
  if (n.kind === "seq") return n.items.map(toJS);
  if (n.kind === "map") {
    const o: Record<string, unknown> = {};
    for (const [k, v] of n.entries) {
      if (k === "__proto__") Object.defineProperty(o, k, { value: toJS(v), enumerable: true, writable: true, configurable: true });
      else o[k] = toJS(v);
    }
    return o;
  }
  switch (n.tag) {
    case "!!null":
      return null;
    case "!!bool":
      return n.value.toLowerCase() === "true";
    case "!!int": {
      const i = parseYqInt(n.value);
      if (i !== undefined) return Number(i);
      return Number(n.value);
    }
    case "!!timestamp":
      return new Date(n.value);
    case "!!float": {
      const f = Number(n.value);
      return Number.isNaN(f) && n.value !== "NaN" ? n.value : f;
    }
    default:
      return n.value;
  }
}
