// Tokeniser for yq v4 expressions. It follows yq's own lexer rules where they matter for meaning:
// a path element `.name` runs until one of ` ;{}:[],|.()=!` or a newline (so `.a-b` and `.a+1` are
// single keys, exactly as in yq), `-` directly followed by a digit is part of a number, `#` starts a
// comment that runs to the end of the line, and `env(NAME)` takes NAME verbatim.

import type { SourceText } from "./source.js";

export type TokenKind =
  | "path" // .name or ."name"; value = the key
  | "dotbracket" // .[
  | "recurse" // ..
  | "self" // .
  | "lbrack"
  | "rbrack"
  | "lparen"
  | "rparen"
  | "lbrace"
  | "rbrace"
  | "comma"
  | "colon"
  | "semi"
  | "pipe"
  | "op" // value: == != < <= > >= = |= += -= *= + - * //
  | "string"
  | "number" // numKind says int or float
  | "var" // value = name without $
  | "word"
  | "env" // value = variable name; strenv marks strenv()
  | "null" // ~
  | "eof";

export interface Token {
  kind: TokenKind;
  value: string;
  pos: number;
  end: number;
  optional?: boolean;
  numKind?: "int" | "float";
  strenv?: boolean;
}

/** Characters that end an unquoted path element (yq: `\.[^ ;\}\{\:\[\],\|\.\[\(\)=\n!]+`). */
const PATH_STOP = new Set([" ", ";", "}", "{", ":", "[", "]", ",", "|", ".", "(", ")", "=", "\n", "!"]);

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= "0" && c <= "9";
const isWordStart = (c: string | undefined): boolean => c !== undefined && /[A-Za-z_]/.test(c);
const isWordChar = (c: string | undefined): boolean => c !== undefined && /[A-Za-z0-9_]/.test(c);

export function tokenize(src: SourceText): Token[] {
  const text = src.text;
  const out: Token[] = [];
  let i = 0;
  const push = (kind: TokenKind, value: string, pos: number, extra: Partial<Token> = {}): void => {
    out.push({ kind, value, pos, end: i, ...extra });
  };
  const syntax = (pos: number, msg: string) => src.error("E_YQ_SYNTAX", pos, msg);
  const unsupported = (pos: number, what: string, hint?: string) =>
    src.error("E_YQ_UNSUPPORTED", pos, `yq operator '${what}' is not supported by kiln`, hint);

  while (i < text.length) {
    const c = text[i]!;
    const start = i;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    if (c === ".") {
      const n = text[i + 1];
      if (n === "." && text[i + 2] === ".") throw unsupported(i, "...", "Use '..' (recursive descent over values).");
      if (n === ".") {
        i += 2;
        push("recurse", "..", start);
        continue;
      }
      if (n === "[") {
        i += 2;
        push("dotbracket", ".[", start);
        continue;
      }
      if (n === '"') {
        i++;
        const key = readString(src, i);
        i = key.end;
        let optional = false;
        if (text[i] === "?") {
          optional = true;
          i++;
        }
        push("path", key.value, start, { optional });
        continue;
      }
      if (n !== undefined && !PATH_STOP.has(n)) {
        i++;
        while (i < text.length && !PATH_STOP.has(text[i]!)) i++;
        let key = text.slice(start + 1, i);
        if (/^[-+*/%<>]+$/.test(key)) {
          // yq reads `.+ [x]` as the key "+" (its path rule allows these characters), which is
          // never what a jq-style `.+ [x]` means; refuse instead of guessing either way.
          throw syntax(
            start,
            `'.${key}' is read by yq as a key named '${key}'; write '. ${key}' (with a space) for the operator, or ."${key}" for the key`,
          );
        }
        let optional = false;
        if (key.endsWith("?")) {
          optional = true;
          key = key.slice(0, -1);
        }
        push("path", key, start, { optional });
        continue;
      }
      i++;
      push("self", ".", start);
      continue;
    }
    switch (c) {
      case "[":
        i++;
        push("lbrack", c, start);
        continue;
      case "]":
        i++;
        if (text[i] === "?") {
          i++; // `.[x]?`: like `.a?`, a bad array index yields nothing instead of an error
          push("rbrack", "]?", start, { optional: true });
        } else push("rbrack", "]", start);
        continue;
      case "(":
        i++;
        push("lparen", c, start);
        continue;
      case ")":
        i++;
        push("rparen", c, start);
        continue;
      case "{":
        i++;
        push("lbrace", c, start);
        continue;
      case "}":
        i++;
        push("rbrace", c, start);
        continue;
      case ",":
        i++;
        push("comma", c, start);
        continue;
      case ";":
        i++;
        push("semi", c, start);
        continue;
      case ":":
        i++;
        push("colon", c, start);
        continue;
      case "~":
        i++;
        push("null", "~", start);
        continue;
      case '"': {
        const s = readString(src, i);
        i = s.end;
        push("string", s.value, start);
        continue;
      }
      case "'":
        throw syntax(i, "yq has no single-quoted strings; use double quotes");
      case "$": {
        i++;
        while (i < text.length && /[A-Za-z0-9_-]/.test(text[i]!)) i++;
        if (i === start + 1) throw syntax(start, "'$' must be followed by a variable name");
        push("var", text.slice(start + 1, i), start);
        continue;
      }
      case "@": {
        i++;
        while (isWordChar(text[i])) i++;
        throw unsupported(start, text.slice(start, i));
      }
    }
    if (c === "|") {
      if (text[i + 1] === "=") {
        i += 2;
        if (text[i] === "c") throw unsupported(start, "|=c", "Custom tags are not kept by kiln; use plain '|='.");
        push("op", "|=", start);
      } else {
        i++;
        push("pipe", "|", start);
      }
      continue;
    }
    if (c === "=" || c === "!" || c === "<" || c === ">") {
      const two = text.slice(i, i + 2);
      if (two === "==" || two === "!=" || two === "<=" || two === ">=") {
        i += 2;
        push("op", two, start);
        continue;
      }
      if (c === "!") throw syntax(i, "unexpected '!' (use 'not' or '!=')");
      i++;
      if (c === "=" && text[i] === "c") throw unsupported(start, "=c", "Custom tags are not kept by kiln; use plain '='.");
      push("op", c, start);
      continue;
    }
    // Numbers come before '-' (as in yq): `-1` is always a negative number, `- 1` is a subtraction.
    if (isDigit(c) || (c === "-" && isDigit(text[i + 1]))) {
      const num = readNumber(text, i);
      i = num.end;
      push("number", num.value, start, { numKind: num.kind });
      continue;
    }
    if (c === "+" || c === "-") {
      if (text[i + 1] === "=") {
        i += 2;
        push("op", c + "=", start);
      } else {
        i++;
        push("op", c, start);
      }
      continue;
    }
    if (c === "*") {
      i++;
      const assign = text[i] === "=";
      if (assign) i++;
      // yq reads merge flags right after '*' ('*+', '*d', '*?', '*n', '*c'); kiln supports plain '*' only.
      const flagsStart = i;
      while (i < text.length && "+|?cdn".includes(text[i]!)) i++;
      const flags = text.slice(flagsStart, i).replace(/\|/g, "");
      if (flags) throw unsupported(start, `*${assign ? "=" : ""}${flags}`, "Only plain '*' (deep merge) is supported.");
      push("op", assign ? "*=" : "*", start);
      continue;
    }
    if (c === "/") {
      if (text[i + 1] === "/") {
        i += 2;
        push("op", "//", start);
        continue;
      }
      throw unsupported(i, "/");
    }
    if (c === "%") throw unsupported(i, "%");
    if (isWordStart(c)) {
      while (isWordChar(text[i])) i++;
      const word = text.slice(start, i);
      if ((word === "env" || word === "strenv") && text[i] === "(") {
        const close = text.indexOf(")", i + 1);
        if (close < 0 || close === i + 1) throw syntax(start, `${word}() needs a variable name, e.g. ${word}(HOME)`);
        const name = text.slice(i + 1, close);
        i = close + 1;
        push("env", name, start, { strenv: word === "strenv" });
        continue;
      }
      push("word", word, start);
      continue;
    }
    throw syntax(i, `unexpected character '${c}'`);
  }
  out.push({ kind: "eof", value: "", pos: text.length, end: text.length });
  return out;
}

function readNumber(text: string, from: number): { value: string; kind: "int" | "float"; end: number } {
  const rest = text.slice(from);
  const hex = /^0[xX][0-9A-Fa-f]+/.exec(rest);
  if (hex) return { value: hex[0], kind: "int", end: from + hex[0].length };
  const sci = /^-?[1-9](\.\d+)?[Ee][-+]?\d+/.exec(rest);
  if (sci) return { value: sci[0], kind: "float", end: from + sci[0].length };
  const flt = /^-?\d+\.\d+/.exec(rest);
  if (flt) return { value: flt[0], kind: "float", end: from + flt[0].length };
  const int = /^-?\d+/.exec(rest)!;
  return { value: int[0], kind: "int", end: from + int[0].length };
}

/** Reads a double-quoted string starting at `from` (the opening quote). */
function readString(src: SourceText, from: number): { value: string; end: number } {
  const text = src.text;
  let i = from + 1;
  let value = "";
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') return { value, end: i + 1 };
    if (c !== "\\") {
      value += c;
      i++;
      continue;
    }
    const e = text[i + 1];
    if (e === undefined) break;
    switch (e) {
      case '"':
      case "\\":
      case "'":
        value += e;
        i += 2;
        continue;
      case "n":
        value += "\n";
        i += 2;
        continue;
      case "t":
        value += "\t";
        i += 2;
        continue;
      case "r":
        value += "\r";
        i += 2;
        continue;
      case "u": {
        const hex = text.slice(i + 2, i + 6);
        if (/^[0-9A-Fa-f]{4}$/.test(hex)) {
          value += String.fromCharCode(parseInt(hex, 16));
          i += 6;
          continue;
        }
        break;
      }
      case "(":
        throw src.error(
          "E_YQ_UNSUPPORTED",
          i,
          "yq operator 'string interpolation \\(...)' is not supported by kiln",
          "Build the string with '+' instead, e.g. \"a\" + .b.",
        );
    }
    // Any other escape (e.g. \d in a regex) is kept as written, as yq does.
    value += c + e;
    i += 2;
  }
  throw src.error("E_YQ_SYNTAX", from, "unterminated string (missing closing '\"')");
}
