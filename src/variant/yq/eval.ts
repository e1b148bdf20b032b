// Evaluator for the yq v4 AST.
//
// It follows yq's execution model rather than jq's: every operator receives the whole list of
// context nodes and returns a list; results are the document's own nodes (so assignment, update
// and del act on the matched places); reading a missing key in a writable context creates it
// (yq's auto-vivification, which is how `.a.b = 1` builds `a:` on the way) while select, `=`'s
// right side, `[...]`, del's argument etc. read without creating. Binary operators pair every
// left result with every right result, left outer (yq's crossFunction).

import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import {
  type YNode,
  adopt,
  appendItem,
  becomeEmpty,
  boolNode,
  copyNode,
  fromJS,
  intNode,
  isTruthy,
  newMap,
  newSeq,
  nul,
  ownSeq,
  parseYqInt,
  reindex,
  replacement,
  scalar,
  str,
  toJS,
  updateFrom,
} from "./nodes.js";
import { YqEvalFailure, add, compare, equals, globMatch, multiply, subtract } from "./ops.js";
import type { Ast } from "./parser.js";
import type { SourceText } from "./source.js";

interface Ctx {
  nodes: YNode[];
  vars: ReadonlyMap<string, YNode[]>;
  /** yq's DontAutoCreate: reading a missing key yields nothing instead of creating it. */
  ro: boolean;
}

type Calc = (l: YNode | undefined, r: YNode | undefined) => YNode | undefined;

/** Appends without spreading into call arguments (which overflows on very large arrays). */
function pushAll<T>(out: T[], items: readonly T[]): void {
  for (const x of items) out.push(x);
}

/** Padding an array up to a huge index would allocate without bound; yq would try. */
const MAX_PAD = 1_000_000;

export class Evaluator {
  constructor(
    private readonly src: SourceText,
    private readonly env: Readonly<Record<string, string | undefined>>,
  ) {}

  run(ast: Ast, root: YNode): YNode[] {
    return this.ev(ast, { nodes: [root], vars: new Map(), ro: false });
  }

  private fail(pos: number, msg: string): never {
    throw this.src.error("E_YQ_EVAL", pos, msg);
  }

  private guard<T>(pos: number, f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof YqEvalFailure) this.fail(pos, e.message);
      throw e;
    }
  }

  /** yq evaluates most operators once per context node ("apart"); an empty context runs once. */
  private groups(c: Ctx): Ctx[] {
    return c.nodes.length === 0 ? [{ ...c, nodes: [] }] : c.nodes.map((n) => ({ ...c, nodes: [n] }));
  }

  private ev(a: Ast, c: Ctx): YNode[] {
    switch (a.t) {
      case "self":
        return c.nodes;
      case "literal": {
        const make = (): YNode => scalar(a.tag, a.value);
        return c.nodes.length === 0 ? [make()] : c.nodes.map(make);
      }
      case "path":
        return c.nodes.flatMap((n) => this.traversePath(n, a.key, a.optional, c.ro, a.pos));
      case "index": {
        const targets = this.ev(a.target, c);
        // The index expression runs against the context (so `$m[.k]` looks up .k of the input),
        // read-only, and only the first context node's indices are used, as in yq.
        const first = c.nodes[0];
        const indices = a.index && first ? this.ev(a.index, { ...c, nodes: [first], ro: true }) : [];
        return targets.flatMap((n) => this.traverseIndices(n, indices, c.ro, a.pos, a.optional));
      }
      case "slice":
        return this.ev(a.target, c).map((n) => this.slice(n, a, c));
      case "recurse": {
        const out: YNode[] = [];
        const walk = (n: YNode): void => {
          out.push(n);
          if (n.kind === "seq") n.items.forEach(walk);
          else if (n.kind === "map") for (const v of n.entries.values()) walk(v);
        };
        c.nodes.forEach(walk);
        return out;
      }
      case "pipe":
        return this.ev(a.right, { ...c, nodes: this.ev(a.left, c) });
      case "bind":
        return this.bind(a, c);
      case "as":
        return this.fail(a.pos, "must use variable with a pipe, e.g. `exp as $x | ...`");
      case "union":
        return [...this.ev(a.left, c), ...this.ev(a.right, c)];
      case "var":
        return c.vars.get(a.name) ?? [];
      case "env":
        return [this.envValue(a.name, a.str, a.pos)];
      case "array": {
        if (c.nodes.length === 0) return [newSeq()];
        const body = a.body;
        return c.nodes.map((n) => replacement(n, newSeq(body ? this.ev(body, { ...c, nodes: [n], ro: true }) : [])));
      }
      case "object":
        return this.object(a, c);
      case "binop":
        return this.binop(a, c);
      case "assign":
        return this.assign(a, c);
      case "call":
        return this.call(a, c);
    }
  }

  // ---- traversal ---------------------------------------------------------------------------

  private traversePath(n: YNode, key: string, optional: boolean, ro: boolean, pos: number): YNode[] {
    if (n.kind === "scalar" && n.tag === "!!null" && !ro) becomeEmpty(n, "map");
    if (n.kind === "map") return this.mapLookup(n, key, ro);
    if (n.kind === "seq") {
      const i = parseYqInt(key);
      if (i === undefined) {
        if (optional) return [];
        this.fail(pos, `cannot index array with '${key}'`);
      }
      return [this.seqIndex(n, Number(i), pos)];
    }
    return [];
  }

  /** Keys match with yq's wildcards (`*`, `?`); a missing key is created unless read-only. */
  private mapLookup(n: YNode, key: string, ro: boolean): YNode[] {
    if (!key.includes("*") && !key.includes("?")) {
      const v = n.entries.get(key);
      if (v) return [v];
    } else {
      const found = [...n.entries].filter(([k]) => globMatch(k, key)).map(([, v]) => v);
      if (found.length > 0) return found;
    }
    if (ro) return [];
    const v = nul();
    adopt(n, v, key);
    n.entries.set(key, v);
    return [v];
  }

  private seqIndex(n: YNode, index: number, pos: number): YNode {
    if (index - n.items.length > MAX_PAD) this.fail(pos, `index [${index}] is too large (array size is ${n.items.length})`);
    while (n.items.length <= index) appendItem(n, nul());
    const use = index < 0 ? n.items.length + index : index;
    const item = n.items[use];
    if (!item) this.fail(pos, `index [${index}] out of range, array size is ${n.items.length}`);
    return item;
  }

  /** `[...]` after an expression: splat when there are no indices, else look each index up. */
  private traverseIndices(n: YNode, indices: YNode[], ro: boolean, pos: number, optional = false): YNode[] {
    if (n.kind === "scalar" && n.tag === "!!null") {
      // yq turns a null it traverses with [] into an empty sequence (or map for string keys).
      becomeEmpty(n, indices.length > 0 && indices[0]!.tag !== "!!int" ? "map" : "seq");
    }
    if (n.kind === "seq") {
      if (indices.length === 0) return [...n.items];
      return indices.flatMap((ix) => {
        const i = parseYqInt(ix.value);
        if (i === undefined) {
          if (optional) return [];
          this.fail(pos, `cannot index array with '${ix.value}'`);
        }
        return [this.seqIndex(n, Number(i), pos)];
      });
    }
    if (n.kind === "map") {
      if (indices.length === 0) return [...n.entries.values()];
      return indices.flatMap((ix) => this.mapLookup(n, ix.value, ro));
    }
    return [];
  }

  private slice(n: YNode, a: Extract<Ast, { t: "slice" }>, c: Ctx): YNode {
    if (n.kind !== "seq" && n.tag !== "!!null") this.fail(a.pos, `cannot slice ${n.tag}, only arrays can be sliced`);
    const len = n.items.length;
    const num = (e: Ast | null, dflt: number): number => {
      if (!e) return dflt;
      const r = this.ev(e, { ...c, nodes: [n] });
      if (r.length !== 1) this.fail(a.pos, `expected to find 1 number, got ${r.length} instead`);
      const v = parseYqInt(r[0]!.value);
      if (v === undefined) this.fail(a.pos, `cannot use '${r[0]!.value}' as an array index`);
      const i = Number(v);
      return Math.max(0, Math.min(len, i < 0 ? len + i : i));
    };
    const from = num(a.from, 0);
    const to = num(a.to, len);
    const out = replacement(n, newSeq(n.items.slice(from, Math.max(from, to))));
    return out;
  }

  // ---- variables, objects ------------------------------------------------------------------

  private bind(a: Extract<Ast, { t: "bind" }>, c: Ctx): YNode[] {
    const out: YNode[] = [];
    for (const g of this.groups(c)) {
      const values = this.ev(a.source, { ...g, ro: true });
      if (values.length === 0) {
        pushAll(out, this.ev(a.body, g));
        continue;
      }
      for (const v of values) {
        const vars = new Map(g.vars);
        vars.set(a.name, [copyNode(v)]);
        pushAll(out, this.ev(a.body, { ...g, vars }));
      }
    }
    return out;
  }

  private object(a: Extract<Ast, { t: "object" }>, c: Ctx): YNode[] {
    if (a.entries.length === 0) return [newMap()];
    const out: YNode[] = [];
    for (const g of this.groups(c)) {
      let agg: YNode[] = [];
      for (const entry of a.entries) {
        const pairs: YNode[] = [];
        for (const k of this.ev(entry.key, g)) {
          if (k.kind !== "scalar") this.fail(entry.key.pos, `object keys must be scalars, not ${k.tag}`);
          for (const v of this.ev(entry.value, g)) {
            const m = newMap();
            m.entries.set(k.value, v);
            pairs.push(m);
          }
        }
        // yq combines the entries as a cartesian product, merging each combination with `*`;
        // an entry that yields nothing restarts the product (yq's collect-object quirk).
        if (agg.length === 0) agg = pairs;
        else agg = agg.flatMap((x) => pairs.map((p) => this.guard(entry.value.pos, () => multiply(x, p))));
      }
      for (const x of agg) {
        const copy = copyNode(x);
        copy.parent = undefined;
        copy.key = undefined;
        out.push(copy);
      }
    }
    return out;
  }

  private envValue(name: string, asString: boolean, pos: number): YNode {
    const raw = this.env[name];
    if (asString) return str(raw ?? "");
    if (raw === undefined || raw === "") this.fail(pos, `value for env variable '${name}' not provided in env()`);
    let v: unknown;
    try {
      v = parseYaml(raw);
    } catch (e) {
      this.fail(pos, `env variable '${name}' is not valid YAML: ${(e as Error).message.split("\n")[0]}`);
    }
    return fromJS(v);
  }

  // ---- binary operators --------------------------------------------------------------------

  /** yq's crossFunction: every left result with every right result, both run on each context node. */
  private cross(c: Ctx, left: Ast, right: Ast, calc: Calc, calcWhenEmpty: boolean, short?: (l: YNode | undefined) => YNode | undefined): YNode[] {
    const out: YNode[] = [];
    for (const g of this.groups(c)) {
      const forLeft = (l: YNode | undefined): void => {
        const s = short?.(l);
        if (s) {
          out.push(s);
          return;
        }
        const rs = this.ev(right, g);
        if (calcWhenEmpty && rs.length === 0) {
          const x = calc(l, undefined);
          if (x) out.push(x);
          return;
        }
        for (const r of rs) {
          const x = calc(l, r);
          if (x) out.push(x);
        }
      };
      const ls = this.ev(left, g);
      if (calcWhenEmpty && ls.length === 0) forLeft(undefined);
      for (const l of ls) forLeft(l);
    }
    return out;
  }

  private binop(a: Extract<Ast, { t: "binop" }>, c: Ctx): YNode[] {
    const ro = { ...c, ro: true };
    const g = <T>(f: () => T): T => this.guard(a.pos, f);
    switch (a.op) {
      case "+":
        return this.cross(ro, a.left, a.right, (l, r) => g(() => add(l!, r!)), false);
      case "-":
        return this.cross(ro, a.left, a.right, (l, r) => g(() => subtract(l!, r!)), false);
      case "*":
        return this.cross(ro, a.left, a.right, (l, r) => g(() => multiply(l!, r!)), false);
      case "==":
        return this.cross(c, a.left, a.right, (l, r) => equals(l, r, false), true);
      case "!=":
        return this.cross(ro, a.left, a.right, (l, r) => equals(l, r, true), true);
      case "<":
      case "<=":
      case ">":
      case ">=": {
        const k = { greater: a.op.startsWith(">"), orEqual: a.op.endsWith("=") };
        return this.cross(c, a.left, a.right, (l, r) => g(() => compare(l, r, k)), true);
      }
      case "//":
        return this.cross(
          c,
          a.left,
          a.right,
          (l, r) => (!l ? r : !r ? l : isTruthy(l) ? l : r),
          true,
          (l) => (l && isTruthy(l) ? l : undefined),
        );
      case "and":
      case "or": {
        const target = a.op === "or";
        return this.cross(
          ro,
          a.left,
          a.right,
          (l, r) => boolNode(l ?? r, r ? isTruthy(r) : false),
          true,
          (l) => ((l ? isTruthy(l) : false) === target ? boolNode(l, target) : undefined),
        );
      }
    }
  }

  // ---- assignment --------------------------------------------------------------------------

  /** Updates can fail on the node they change (a key renamed to one the map has): reported at the operator. */
  private assign(a: Extract<Ast, { t: "assign" }>, c: Ctx): YNode[] {
    return this.guard(a.pos, () => this.assignNow(a, c));
  }

  private assignNow(a: Extract<Ast, { t: "assign" }>, c: Ctx): YNode[] {
    switch (a.op) {
      case "=": {
        // The first pass creates missing paths; then each target takes the value of the right
        // side evaluated against the context (not against the target), as in yq.
        this.ev(a.left, c);
        this.cross({ ...c, ro: true }, a.left, a.right, (l, r) => {
          updateFrom(l!, r!);
          return l;
        }, false);
        return c.nodes;
      }
      case "|=": {
        // last match first, as yq does: children before their parents (`.. |= …`, recursive with_entries)
        for (const target of this.ev(a.left, c).reverse()) {
          const r = this.ev(a.right, { ...c, nodes: [target] });
          if (r[0]) updateFrom(target, r[0]);
        }
        return c.nodes;
      }
      default: {
        // `.a += x` is `.a = .a + x`: x is evaluated against the context, once per context node.
        const op = a.op === "+=" ? add : a.op === "-=" ? subtract : multiply;
        for (const target of this.ev(a.left, c)) {
          const before = copyNode(target);
          for (const g of this.groups({ ...c, ro: true })) {
            for (const r of this.ev(a.right, g)) {
              const value = this.guard(a.pos, () => op(copyNode(before), r));
              updateFrom(target, value);
            }
          }
        }
        return c.nodes;
      }
    }
  }

  // ---- functions ---------------------------------------------------------------------------

  private call(a: Extract<Ast, { t: "call" }>, c: Ctx): YNode[] {
    const arg = (i: number): Ast => a.args[i]!;
    switch (a.name) {
      case "select":
        // kept when any result of the condition is true (`select(false, true)` keeps it)
        return c.nodes.filter((n) => this.ev(arg(0), { ...c, nodes: [n], ro: true }).some(isTruthy));
      case "del":
        return this.del(arg(0), c, a.pos);
      case "test":
        return this.test(a, c);
      case "has": {
        const wanted = this.ev(arg(0), { ...c, ro: true })[0];
        const key = wanted ? wanted.value : "null";
        return c.nodes.map((n) => {
          if (n.kind === "map") return boolNode(n, n.entries.has(key));
          if (n.kind === "seq" && wanted?.tag === "!!int") {
            const i = parseYqInt(key);
            if (i === undefined) this.fail(a.pos, `cannot parse '${key}' as an integer`);
            return boolNode(n, BigInt(n.items.length) > i);
          }
          return boolNode(n, false);
        });
      }
      case "length":
        return c.nodes.map((n) => {
          const len = n.kind === "seq" ? n.items.length : n.kind === "map" ? n.entries.size : n.tag === "!!null" ? 0 : Buffer.byteLength(n.value);
          return replacement(n, intNode(len));
        });
      case "keys":
        // new nodes, owned by the new array (so `keys | del(.[0])` deletes from it)
        return c.nodes.map((n) => {
          if (n.kind === "map") return ownSeq([...n.entries.keys()].map((k) => str(k)));
          if (n.kind === "seq") return ownSeq(n.items.map((_, i) => intNode(i)));
          return this.fail(a.pos, `Cannot get keys of ${n.tag}, keys only works for maps and arrays`);
        });
      case "key":
        // assigning to it renames the entry, as in yq: (.a.x | key) = "y"
        return c.nodes.flatMap((n) => {
          if (n.key === undefined) return [];
          const k = typeof n.key === "number" ? intNode(n.key) : str(n.key);
          k.keyOf = n;
          return [k];
        });
      case "not":
        return c.nodes.map((n) => boolNode(n, !isTruthy(n)));
      case "type":
        return c.nodes.map((n) => replacement(n, str(n.tag)));
      case "tostring":
        return c.nodes.map((n) => {
          if (n.kind === "scalar") return replacement(n, str(n.value));
          return replacement(n, str(stringifyYaml(toJS(n)).replace(/\n$/, "")));
        });
      case "to_entries":
        return this.toEntries(c.nodes, a.pos);
      case "from_entries":
        return c.nodes.map((n) => this.fromEntries(n, a.pos));
      case "with_entries":
        return this.toEntries(c.nodes, a.pos).map((entries) => {
          const r = this.ev(arg(0), { ...c, nodes: [...entries.items] });
          return this.fromEntries(newSeq(r), a.pos);
        });
      case "map":
        return c.nodes.map((n) => newSeq(this.ev(arg(0), { ...c, nodes: this.traverseIndices(n, [], c.ro, a.pos) })));
      case "map_values":
        // Each value of each input is updated in place (like `.[] |= f`); the inputs are returned.
        for (const n of c.nodes) {
          for (const v of this.traverseIndices(n, [], c.ro, a.pos)) {
            const r = this.ev(arg(0), { ...c, nodes: [v] });
            if (r[0]) updateFrom(v, r[0]);
          }
        }
        return c.nodes;
      case "first": {
        const out: YNode[] = [];
        for (const n of c.nodes) {
          if (a.args.length === 0) {
            const f = n.kind === "map" ? n.entries.values().next().value : n.kind === "seq" ? n.items[0] : undefined;
            if (f) out.push(f);
            continue;
          }
          for (const item of this.traverseIndices(n, [], c.ro, a.pos)) {
            if (this.ev(arg(0), { ...c, nodes: [item] }).some(isTruthy)) {
              out.push(item);
              break;
            }
          }
        }
        return out;
      }
      case "limit": {
        // Not a yq v4 operator: jq's limit(n; f), accepted so jq-era modifiers keep working.
        const out: YNode[] = [];
        for (const g of this.groups(c)) {
          const ns = this.ev(arg(0), { ...g, ro: true });
          const n = ns.length === 1 ? parseYqInt(ns[0]!.value) : undefined;
          if (n === undefined) this.fail(a.pos, "limit(n; f) needs exactly one integer n");
          if (n <= 0n) continue;
          pushAll(out, this.ev(arg(1), g).slice(0, Number(n)));
        }
        return out;
      }
      default:
        return this.fail(a.pos, `internal: unknown function '${a.name}'`);
    }
  }

  private del(target: Ast, c: Ctx, pos: number): YNode[] {
    const found = this.ev(target, { ...c, ro: true });
    // Array elements are removed in one pass per array (so deleting many is linear, and indices
    // never shift under us); map keys go straight away.
    const fromSeq = new Map<YNode, Set<number>>();
    const flush = (): void => {
      for (const [seq, gone] of fromSeq) {
        seq.items = seq.items.filter((_, i) => !gone.has(i));
        reindex(seq);
      }
    };
    for (let i = found.length - 1; i >= 0; i--) {
      const n = found[i]!;
      const parent = n.parent;
      if (!parent) {
        // A top-level node: yq drops it from the results instead.
        flush();
        return c.nodes.filter((x) => x !== n);
      }
      if (parent.kind === "map") parent.entries.delete(String(n.key));
      else if (parent.kind === "seq") {
        if (typeof n.key !== "number") continue;
        let gone = fromSeq.get(parent);
        if (!gone) fromSeq.set(parent, (gone = new Set()));
        gone.add(n.key);
      } else this.fail(pos, `cannot delete nodes from parent of tag ${parent.tag}`);
    }
    flush();
    return c.nodes;
  }

  private test(a: Extract<Ast, { t: "call" }>, c: Ctx): YNode[] {
    if (a.args[1]) {
      let flags = this.ev(a.args[1], c)[0]?.value ?? "";
      flags = flags.replace(/g/g, "");
      if (flags.includes("i")) {
        this.fail(a.pos, `'i' is not a valid option for match. To ignore case, use an expression like match("(?i)cat")`);
      }
      if (flags) this.fail(a.pos, `Unrecognised match params '${flags}'`);
    }
    const pattern = this.ev(a.args[0]!, { ...c, ro: true })[0]?.value ?? "";
    const re = this.regex(pattern, a.pos);
    return c.nodes.map((n) => {
      if (n.tag !== "!!str") {
        this.fail(a.pos, `cannot match with ${n.tag}, can only match strings. Hint: Most often you'll want to use '|=' over '=' for this operation`);
      }
      return boolNode(n, re.test(n.value));
    });
  }

  /** Go (RE2) regular expression -> JavaScript RegExp, for the common subset. */
  private regex(pattern: string, pos: number): RegExp {
    let body = pattern;
    let flags = "";
    const lead = /^\(\?([imsU]+)\)/.exec(body);
    if (lead) {
      if (lead[1]!.includes("U")) this.fail(pos, "the regular expression flag U (ungreedy) is not supported by kiln");
      flags = [...new Set(lead[1]!.split(""))].join("");
      body = body.slice(lead[0].length);
    }
    if (/\\[pPQ]|\(\?[imsU]*[:)]|\\[Az]/.test(body)) {
      this.fail(pos, `the regular expression '${pattern}' uses RE2 syntax kiln cannot translate (\\p, \\Q, \\A, \\z or inline flags)`);
    }
    body = body.replace(/\(\?P</g, "(?<");
    const posix: Record<string, string> = {
      alpha: "A-Za-z",
      digit: "0-9",
      alnum: "A-Za-z0-9",
      upper: "A-Z",
      lower: "a-z",
      space: "\\t\\n\\v\\f\\r ",
      xdigit: "0-9A-Fa-f",
      word: "\\w",
      punct: "!-\\/:-@\\[-`{-~",
    };
    body = body.replace(/\[:(\^?)([a-z]+):\]/g, (m, neg: string, name: string) => {
      const cls = posix[name];
      if (!cls || neg) this.fail(pos, `the regular expression class '${m}' is not supported by kiln`);
      return cls;
    });
    try {
      return new RegExp(body, flags);
    } catch (e) {
      return this.fail(pos, `error parsing regexp: ${(e as Error).message}`);
    }
  }

  private toEntries(nodes: YNode[], pos: number): YNode[] {
    const out: YNode[] = [];
    for (const n of nodes) {
      if (n.kind === "scalar") {
        if (n.tag === "!!null") continue;
        this.fail(pos, `${n.tag} has no keys`);
      }
      const entry = (key: YNode, value: YNode): YNode => {
        const m = newMap();
        adopt(m, key, "key");
        m.entries.set("key", key);
        m.entries.set("value", value); // the document's own node, so updates through it stick
        return m;
      };
      const seq = n.kind === "map" ? ownSeq([...n.entries].map(([k, v]) => entry(str(k), v))) : ownSeq(n.items.map((v, i) => entry(intNode(i), v)));
      out.push(replacement(n, seq));
    }
    return out;
  }

  private fromEntries(n: YNode, pos: number): YNode {
    if (n.kind !== "seq") this.fail(pos, "from entries only runs against arrays");
    const out = replacement(n, newMap());
    n.items.forEach((e, i) => {
      const one = (name: string): YNode => {
        const found = e.kind === "map" ? this.mapLookup(e, name, true) : [];
        if (found.length !== 1) this.fail(pos, `expected to find one '${name}' entry but found ${found.length} in position ${i}`);
        return found[0]!;
      };
      const k = one("key");
      const v = one("value");
      if (k.kind !== "scalar") this.fail(pos, `map keys must be scalars, not ${k.tag} (position ${i})`);
      out.entries.set(k.value, v);
    });
    return out;
  }
}
