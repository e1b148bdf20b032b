// Parser for yq v4 expressions, producing an AST whose nodes carry source offsets.
//
// Precedences are yq's own (pkg/yqlib operation types): `,` 10, `and`/`or` 20, `|` 30,
// `as` and the assignment/comparison operators 40, `+ - * // *=` 42, the implicit pipe between
// `.a.b` 45. yq resolves operators of equal precedence right to left (its shunting-yard only pops
// strictly higher ones), so `1 - 2 - 3` is `1 - (2 - 3)` and `2 * 3 + 1` is `2 * (3 + 1)`;
// this parser does the same on purpose.

import { type Token, tokenize } from "./lexer.js";
import type { SourceText } from "./source.js";
import { classifyWord, isYqWord } from "./words.js";

export type BinOp = "+" | "-" | "*" | "//" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "and" | "or";
export type AssignOp = "=" | "|=" | "+=" | "-=" | "*=";
export type LiteralTag = "!!str" | "!!int" | "!!float" | "!!bool" | "!!null";

export type Ast =
  | { t: "self"; pos: number }
  | { t: "recurse"; pos: number }
  | { t: "path"; key: string; optional: boolean; pos: number }
  | { t: "index"; target: Ast; index: Ast | null; optional: boolean; pos: number }
  | { t: "slice"; target: Ast; from: Ast | null; to: Ast | null; pos: number }
  | { t: "literal"; tag: LiteralTag; value: string; pos: number }
  | { t: "pipe"; left: Ast; right: Ast; pos: number }
  | { t: "bind"; source: Ast; name: string; body: Ast; pos: number }
  | { t: "as"; source: Ast; name: string; pos: number }
  | { t: "union"; left: Ast; right: Ast; pos: number }
  | { t: "binop"; op: BinOp; left: Ast; right: Ast; pos: number }
  | { t: "assign"; op: AssignOp; left: Ast; right: Ast; pos: number }
  | { t: "var"; name: string; pos: number }
  | { t: "array"; body: Ast | null; pos: number }
  | { t: "object"; entries: Array<{ key: Ast; value: Ast }>; pos: number }
  | { t: "call"; name: string; args: Ast[]; pos: number }
  | { t: "env"; name: string; str: boolean; pos: number };

const PREC: Record<string, number> = {
  ",": 10,
  and: 20,
  or: 20,
  "|": 30,
  as: 40,
  "=": 40,
  "|=": 40,
  "+=": 40,
  "-=": 40,
  "==": 40,
  "!=": 40,
  "<": 40,
  "<=": 40,
  ">": 40,
  ">=": 40,
  "*=": 42,
  "+": 42,
  "-": 42,
  "*": 42,
  "//": 42,
};
const SHORT_PIPE = 45;
const OBJECT_PART = 16; // just above yq's createMap (15): stops at ':' and ','

/** Functions: name -> allowed argument counts. */
const ARITY: Record<string, readonly number[]> = {
  select: [1],
  test: [1, 2],
  has: [1],
  map: [1],
  map_values: [1],
  del: [1],
  with_entries: [1],
  limit: [2],
  first: [0, 1],
  to_entries: [0],
  from_entries: [0],
  keys: [0],
  key: [0],
  length: [0],
  not: [0],
  tostring: [0],
  type: [0],
};

interface Parsed {
  ast: Ast;
  /** yq's CheckForPostTraverse: a following `.x` or `[...]` continues this expression. */
  pt: boolean;
}

export function parseExpression(src: SourceText): Ast {
  return new Parser(src, tokenize(src)).parseAll();
}

class Parser {
  private i = 0;
  constructor(
    private readonly src: SourceText,
    private readonly toks: Token[],
  ) {}

  private peek(off = 0): Token {
    return this.toks[Math.min(this.i + off, this.toks.length - 1)]!;
  }
  private next(): Token {
    const t = this.peek();
    if (this.i < this.toks.length - 1) this.i++;
    return t;
  }
  private syntax(pos: number, msg: string) {
    return this.src.error("E_YQ_SYNTAX", pos, msg);
  }
  private describe(t: Token): string {
    if (t.kind === "eof") return "end of expression";
    if (t.kind === "string") return `string "${t.value}"`;
    if (t.kind === "path") return `'.${t.value}'`;
    if (t.kind === "var") return `'$${t.value}'`;
    return `'${this.src.text.slice(t.pos, t.end)}'`;
  }
  private expect(kind: Token["kind"], what: string): Token {
    const t = this.peek();
    if (t.kind !== kind) throw this.unexpected(t, `expected ${what} but found ${this.describe(t)}`);
    return this.next();
  }

  /** The error for a token that cannot go here; a yq operator kiln lacks is named as such. */
  private unexpected(t: Token, msg = `unexpected ${this.describe(t)}`) {
    if (t.kind === "word") {
      const c = classifyWord(t.value).kind;
      if (c === "yq-unsupported") return this.src.error("E_YQ_UNSUPPORTED", t.pos, `yq operator '${t.value}' is not supported by kiln`);
      if (c === "jq-only") {
        return this.src.error("E_YQ_UNSUPPORTED", t.pos, `'${t.value}' is not supported by kiln (it is a jq function; yq v4 does not have it either)`);
      }
    }
    if (t.kind === "number" && t.value.startsWith("-")) {
      return this.src.error("E_YQ_SYNTAX", t.pos, `${msg} (yq reads '${t.value}' as a negative number; write '- ${t.value.slice(1)}' to subtract)`);
    }
    if (t.kind === "semi") return this.src.error("E_YQ_UNSUPPORTED", t.pos, "yq operator ';' outside function arguments is not supported by kiln");
    return this.syntax(t.pos, msg);
  }

  parseAll(): Ast {
    if (this.peek().kind === "eof") return { t: "self", pos: 0 }; // an empty expression is '.' (as in yq)
    const ast = this.parseExpr(0).ast;
    const t = this.peek();
    if (t.kind !== "eof") throw this.unexpected(t);
    checkNoStrayAs(ast, this.src);
    return ast;
  }

  /** Binary operator at the current token, or undefined. */
  private binaryOp(left: Parsed): { op: string; prec: number; implicit: boolean } | undefined {
    const t = this.peek();
    if (left.pt && (t.kind === "path" || t.kind === "dotbracket")) return { op: "short|", prec: SHORT_PIPE, implicit: true };
    if (t.kind === "comma") return { op: ",", prec: PREC[","]!, implicit: false };
    if (t.kind === "pipe") return { op: "|", prec: PREC["|"]!, implicit: false };
    if (t.kind === "op") return { op: t.value, prec: PREC[t.value]!, implicit: false };
    if (t.kind === "word" && (t.value === "and" || t.value === "or" || t.value === "as")) {
      return { op: t.value, prec: PREC[t.value]!, implicit: false };
    }
    return undefined;
  }

  parseExpr(minPrec: number): Parsed {
    let left = this.parsePostfix();
    for (;;) {
      const b = this.binaryOp(left);
      if (!b || b.prec < minPrec) return left;
      const opTok = b.implicit ? this.peek() : this.next();
      const pos = opTok.pos;
      if (b.op === "as") {
        const v = this.expect("var", "a variable name (e.g. $x) after 'as'");
        const after = this.peek();
        if (after.kind === "path" || after.kind === "dotbracket" || after.kind === "lbrack") {
          throw this.syntax(after.pos, "RHS of 'as' operator must be a variable name e.g. $foo");
        }
        left = { ast: { t: "as", source: left.ast, name: v.value, pos }, pt: false };
        continue;
      }
      // Equal precedence binds to the right (yq), so the right side is parsed at the same level.
      const right = this.parseExpr(b.prec);
      left = { ast: this.combine(b.op, left.ast, right.ast, pos), pt: b.implicit ? right.pt : false };
    }
  }

  private combine(op: string, left: Ast, right: Ast, pos: number): Ast {
    switch (op) {
      case "short|":
      case "|":
        if (left.t === "as") return { t: "bind", source: left.source, name: left.name, body: right, pos: left.pos };
        return { t: "pipe", left, right, pos };
      case ",":
        return { t: "union", left, right, pos };
      case "=":
      case "|=":
      case "+=":
      case "-=":
      case "*=":
        return { t: "assign", op, left, right, pos };
      default:
        return { t: "binop", op: op as BinOp, left, right, pos };
    }
  }

  private parsePostfix(): Parsed {
    let p = this.parsePrimary();
    while (p.pt && this.peek().kind === "lbrack") {
      const open = this.next();
      p = { ast: this.bracketSuffix(p.ast, open.pos), pt: true };
    }
    return p;
  }

  /** After `[` (or `.[`): `[]`, `[expr]`, `[a:b]`, `[:b]`, `[a:]`. */
  private bracketSuffix(target: Ast, pos: number): Ast {
    if (this.peek().kind === "rbrack") {
      const close = this.next();
      return { t: "index", target, index: null, optional: close.optional === true, pos };
    }
    let from: Ast | null = null;
    if (this.peek().kind !== "colon") from = this.parseExpr(0).ast;
    if (this.peek().kind === "colon") {
      this.next();
      let to: Ast | null = null;
      if (this.peek().kind !== "rbrack") to = this.parseExpr(0).ast;
      this.expect("rbrack", "']'");
      return { t: "slice", target, from, to, pos };
    }
    const close = this.expect("rbrack", "']'");
    return { t: "index", target, index: from, optional: close.optional === true, pos };
  }

  private parsePrimary(): Parsed {
    const t = this.next();
    switch (t.kind) {
      case "path":
        return { ast: { t: "path", key: t.value, optional: t.optional === true, pos: t.pos }, pt: true };
      case "dotbracket":
        return { ast: this.bracketSuffix({ t: "self", pos: t.pos }, t.pos), pt: true };
      case "self":
        return { ast: { t: "self", pos: t.pos }, pt: false };
      case "recurse":
        return { ast: { t: "recurse", pos: t.pos }, pt: false };
      case "string":
        return { ast: { t: "literal", tag: "!!str", value: t.value, pos: t.pos }, pt: false };
      case "number":
        return { ast: { t: "literal", tag: t.numKind === "float" ? "!!float" : "!!int", value: t.value, pos: t.pos }, pt: false };
      case "null":
        return { ast: { t: "literal", tag: "!!null", value: t.value, pos: t.pos }, pt: false };
      case "var":
        return { ast: { t: "var", name: t.value, pos: t.pos }, pt: true };
      case "env":
        return { ast: { t: "env", name: t.value, str: t.strenv === true, pos: t.pos }, pt: true };
      case "lparen": {
        const inner = this.parseExpr(0).ast;
        this.expect("rparen", "')'");
        return { ast: inner, pt: true };
      }
      case "lbrack": {
        if (this.peek().kind === "rbrack") {
          this.next();
          return { ast: { t: "array", body: null, pos: t.pos }, pt: true };
        }
        const body = this.parseExpr(0).ast;
        this.expect("rbrack", "']'");
        return { ast: { t: "array", body, pos: t.pos }, pt: true };
      }
      case "lbrace":
        return { ast: this.object(t.pos), pt: true };
      case "word":
        return this.word(t);
      default:
        throw this.unexpected(t);
    }
  }

  private object(pos: number): Ast {
    const entries: Array<{ key: Ast; value: Ast }> = [];
    if (this.peek().kind === "rbrace") {
      this.next();
      return { t: "object", entries, pos };
    }
    for (;;) {
      const k = this.peek();
      let key: Ast;
      if (k.kind === "word" && this.peek(1).kind === "colon" && !isYqWord(k.value)) {
        // jq-style bare key ({name: "x"}); yq itself cannot read such a word, so this adds meaning
        // only where yq would fail.
        this.next();
        key = { t: "literal", tag: "!!str", value: k.value, pos: k.pos };
      } else {
        key = this.parseExpr(OBJECT_PART).ast;
      }
      this.expect("colon", "':' after an object key");
      const value = this.parseExpr(OBJECT_PART).ast;
      entries.push({ key, value });
      const t = this.next();
      if (t.kind === "rbrace") return { t: "object", entries, pos };
      if (t.kind !== "comma") throw this.unexpected(t, `expected ',' or '}' in object construction but found ${this.describe(t)}`);
    }
  }

  private word(t: Token): Parsed {
    const c = classifyWord(t.value);
    switch (c.kind) {
      case "literal":
        return { ast: { t: "literal", tag: c.value === "null" ? "!!null" : "!!bool", value: t.value, pos: t.pos }, pt: false };
      case "keyword":
        throw this.syntax(t.pos, `unexpected '${t.value}'`);
      case "yq-unsupported":
        throw this.src.error("E_YQ_UNSUPPORTED", t.pos, `yq operator '${t.value}' is not supported by kiln`);
      case "jq-only":
        throw this.src.error(
          "E_YQ_UNSUPPORTED",
          t.pos,
          `'${t.value}' is not supported by kiln (it is a jq function; yq v4 does not have it either)`,
        );
      case "unknown":
        throw this.syntax(t.pos, `unknown word '${t.value}' (not a yq v4 operator; strings need double quotes)`);
      case "limit":
      case "supported":
        break;
    }
    const name = c.kind === "limit" ? "limit" : c.name;
    const allowed = ARITY[name]!;
    if (name === "type") {
      const n = this.peek();
      if (n.kind === "op" && (n.value === "=" || n.value === "|=")) {
        throw this.src.error("E_YQ_UNSUPPORTED", t.pos, `yq operator '${t.value} ${n.value}' (setting tags) is not supported by kiln`);
      }
    }
    const args: Ast[] = [];
    let hasParens = false;
    if (this.peek().kind === "lparen" && !allowed.some((n) => n > 0)) {
      throw this.syntax(this.peek().pos, `'${t.value}' takes no arguments`);
    }
    if (this.peek().kind === "lparen") {
      hasParens = true;
      this.next();
      for (;;) {
        args.push(this.parseExpr(0).ast);
        const sep = this.next();
        if (sep.kind === "rparen") break;
        if (sep.kind !== "semi") throw this.unexpected(sep, `expected ';' or ')' in arguments of ${t.value} but found ${this.describe(sep)}`);
      }
    }
    if (!allowed.includes(args.length)) {
      const want = allowed.filter((n) => n > 0).join(" or ");
      throw this.syntax(t.pos, `'${t.value}' needs ${want} argument${want === "1" ? "" : "s"}, e.g. ${t.value}(${name === "limit" ? "1; .[]" : "..."})`);
    }
    return { ast: { t: "call", name, args, pos: t.pos }, pt: hasParens || name === "to_entries" };
  }
}

/** `exp as $x` is only meaningful as the left side of a pipe (yq: "must use variable with a pipe"). */
function checkNoStrayAs(ast: Ast, src: SourceText): void {
  const visit = (a: Ast): void => {
    switch (a.t) {
      case "as":
        throw src.error("E_YQ_SYNTAX", a.pos, "must use variable with a pipe, e.g. `exp as $x | ...`");
      case "index":
        visit(a.target);
        if (a.index) visit(a.index);
        return;
      case "slice":
        visit(a.target);
        if (a.from) visit(a.from);
        if (a.to) visit(a.to);
        return;
      case "pipe":
      case "union":
      case "binop":
      case "assign":
        visit(a.left);
        visit(a.right);
        return;
      case "bind":
        visit(a.source);
        visit(a.body);
        return;
      case "array":
        if (a.body) visit(a.body);
        return;
      case "object":
        for (const e of a.entries) {
          visit(e.key);
          visit(e.value);
        }
        return;
      case "call":
        a.args.forEach(visit);
        return;
      default:
        return;
    }
  };
  visit(ast);
}
