import type { Entry } from "./types.js";

const TYPE_CHARS: Record<string, Entry["type"]> = { "-": "file", d: "dir", l: "symlink", c: "char", b: "block", p: "fifo", s: "socket", h: "file" };

/** "-rwsr-x--T" → { type, mode } as ls -l shows them. */
export function parseLsMode(s: string): { type: Entry["type"]; mode: number } {
  const type = TYPE_CHARS[s[0] ?? "-"] ?? "file";
  let mode = 0;
  const bit = (i: number, v: number) => (s[i] !== "-" && s[i] !== undefined ? v : 0);
  mode |= bit(1, 0o400) | bit(2, 0o200) | bit(4, 0o40) | bit(5, 0o20) | bit(7, 0o4) | bit(8, 0o2);
  const x = (i: number, xv: number, sv: number) => {
    const c = s[i];
    if (c === "x") mode |= xv;
    else if (c === "s" || c === "t") mode |= xv | sv;
    else if (c === "S" || c === "T") mode |= sv;
  };
  x(3, 0o100, 0o4000);
  x(6, 0o10, 0o2000);
  x(9, 0o1, 0o1000);
  return { type, mode };
}

/** st_mode (with type bits) → { type, mode }. */
export function fromStMode(m: number): { type: Entry["type"]; mode: number } {
  const t = m & 0o170000;
  const type: Entry["type"] =
    t === 0o040000 ? "dir" : t === 0o120000 ? "symlink" : t === 0o020000 ? "char" : t === 0o060000 ? "block" : t === 0o010000 ? "fifo" : t === 0o140000 ? "socket" : "file";
  return { type, mode: m & 0o7777 };
}

export function octal(mode: number): string {
  return mode.toString(8).padStart(4, "0");
}
