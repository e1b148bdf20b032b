import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import { KilnError } from "../core/errors.js";
import { sha256Hex } from "../core/hash.js";
import { HELPERS } from "./shell.js";

/** What sourcing a build script sets (Pygos's package variables) and which functions it defines. */
export interface ScriptMeta {
  version: string;
  url: string;
  tarball: string;
  sha256: string;
  srcdir: string;
  depends: string[];
  subpkg: string[];
  functions: string[];
  /** Files the script sourced (another package's build script, a shared include), absolute. */
  sourced: string[];
}

const FIELDS = ["VERSION", "URL", "TARBALL", "SHA256SUM", "SRCDIR", "DEPENDS", "SUBPKG"] as const;

interface CacheEntry {
  key: string;
  sourced: Record<string, string>;
  meta: ScriptMeta;
}

interface CacheFile {
  stamp: string;
  entries: Record<string, CacheEntry>;
}

/** One bash for all scripts whose answer is not cached: each is sourced in a subshell after the product's TOOLCHAIN. */
const EXTRACT = `
source "$KILN_HELPERS"
while IFS= read -r __kiln_f; do [ -n "$__kiln_f" ] && source "$__kiln_f"; done <<< "$KILN_TCFILES"
__kiln_rec() { case "$1" in /*) printf 'S\\0%s\\0' "$1" ;; *) printf 'S\\0%s\\0' "$PWD/$1" ;; esac; }
for __kiln_script in "$@"; do
  echo "@@kiln $__kiln_script" >&2
  (
    cd "\${__kiln_script%/*}" || exit 0
    unset ${FIELDS.join(" ")}
    unset -f prepare build deploy check_update
    source() { __kiln_rec "$1"; builtin source "$@"; }
    .() { __kiln_rec "$1"; builtin . "$@"; }
    builtin source "$__kiln_script" > /dev/null
    printf 'P\\0%s\\0' "$__kiln_script"
    for __kiln_v in ${FIELDS.join(" ")}; do
      __kiln_x="$__kiln_v[*]"
      printf 'F\\0%s\\0%s\\0' "$__kiln_v" "\${!__kiln_x}"
    done
    printf 'D\\0%s\\0' "$(declare -F | sed 's/^declare -f //' | tr '\\n' ' ')"
  )
done
`;

async function digestOf(path: string): Promise<string> {
  return sha256Hex(await readFile(path).catch(() => Buffer.from("\0absent")));
}

export interface MetaOptions {
  root: string;
  /** The product's TOOLCHAIN files in layer order, and their combined digest. */
  toolchainFiles: string[];
  env: Record<string, string>;
  cacheDir?: string;
}

/**
 * Get every script's variables: from the cache when the script, what it
 * sourced, the TOOLCHAIN and the helper library are unchanged (a no-op plan
 * spawns no bash), else by sourcing it in bash.
 */
export async function scriptMetadata(scripts: string[], o: MetaOptions): Promise<Map<string, ScriptMeta>> {
  const stamp = sha256Hex(JSON.stringify([1, await digestOf(HELPERS), await Promise.all(o.toolchainFiles.map(async (f) => [f, await digestOf(f)])), o.env]));
  const file = o.cacheDir ? join(o.cacheDir, `pygos-meta-${sha256Hex(o.root).slice(0, 16)}.json`) : undefined;
  let cache: CacheFile = { stamp, entries: {} };
  if (file) {
    const loaded = JSON.parse(await readFile(file, "utf8").catch(() => "null")) as CacheFile | null;
    if (loaded?.stamp === stamp) cache = loaded;
  }
  const out = new Map<string, ScriptMeta>();
  const todo: string[] = [];
  const keys = new Map<string, string>();
  await Promise.all(
    scripts.map(async (s) => {
      const key = await digestOf(s);
      keys.set(s, key);
      const hit = cache.entries[s];
      if (hit && hit.key === key && (await Promise.all(Object.entries(hit.sourced).map(async ([p, d]) => (await digestOf(p)) === d))).every(Boolean)) out.set(s, hit.meta);
      else todo.push(s);
    }),
  );
  if (!todo.length) return out;
  todo.sort();
  const env = { ...o.env, KILN_HELPERS: HELPERS, KILN_TCFILES: o.toolchainFiles.join("\n") };
  const { stdout, stderr } = await runExtract(todo, env, o.root);
  const problems = syntaxErrors(stderr);
  for (const [script, lines] of problems) {
    throw new KilnError("E_PYGOS_SCRIPT", `${rel(o.root, script)} has a shell syntax error`, { location: { file: rel(o.root, script) }, details: lines, hint: `check it with: bash -n ${rel(o.root, script)}` });
  }
  for (const [script, meta] of parseExtract(stdout)) {
    out.set(script, meta);
    const sourced = Object.fromEntries(await Promise.all(meta.sourced.map(async (p) => [p, await digestOf(p)] as const)));
    cache.entries[script] = { key: keys.get(script)!, sourced, meta };
  }
  for (const s of Object.keys(cache.entries)) if (!keys.has(s)) delete cache.entries[s];
  cache.stamp = stamp;
  if (file) await writeFileAtomic(file, JSON.stringify(cache), { sync: false });
  return out;
}

const rel = (root: string, p: string) => (p.startsWith(`${root}/`) ? p.slice(root.length + 1) : p);

async function runExtract(scripts: string[], env: Record<string, string>, root: string): Promise<{ stdout: string; stderr: string }> {
  // stderr carries the per-script markers; bash() only returns stdout, so this one call uses execa directly.
  const { execa } = await import("execa");
  const res = await execa("bash", ["--noprofile", "--norc", "-c", EXTRACT, "kiln", ...scripts], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C", ...env },
    extendEnv: false,
    reject: false,
    encoding: "utf8",
    timeout: 120_000,
    cwd: root,
  });
  if (res.exitCode !== 0) throw new KilnError("E_PYGOS_SCRIPT", `reading the build scripts failed (bash exit code ${res.exitCode ?? "?"})`, { details: res.stderr.trim().split("\n").slice(-15) });
  return { stdout: res.stdout, stderr: res.stderr };
}

function syntaxErrors(stderr: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = "";
  for (const line of stderr.split("\n")) {
    const m = /^@@kiln (.*)$/.exec(line);
    if (m) current = m[1]!;
    else if (current && /syntax error|unexpected end of file/.test(line)) out.set(current, [...(out.get(current) ?? []), line]);
  }
  return out;
}

function parseExtract(stdout: string): Map<string, ScriptMeta> {
  const parts = stdout.split("\0");
  const out = new Map<string, ScriptMeta>();
  let cur: ScriptMeta | undefined;
  const pendingSourced: string[] = [];
  const words = (s: string) => s.split(/\s+/).filter(Boolean);
  for (let i = 0; i < parts.length; ) {
    const tag = parts[i++];
    if (tag === "S") pendingSourced.push(parts[i++]!);
    else if (tag === "P") {
      cur = { version: "", url: "", tarball: "", sha256: "", srcdir: "", depends: [], subpkg: [], functions: [], sourced: [...new Set(pendingSourced)].sort() };
      pendingSourced.length = 0;
      out.set(parts[i++]!, cur);
    } else if (tag === "F" && cur) {
      const name = parts[i++]!;
      const value = parts[i++]!;
      if (name === "VERSION") cur.version = value.trim();
      else if (name === "URL") cur.url = value.trim();
      else if (name === "TARBALL") cur.tarball = value.trim();
      else if (name === "SHA256SUM") cur.sha256 = value.trim();
      else if (name === "SRCDIR") cur.srcdir = value.trim();
      else if (name === "DEPENDS") cur.depends = words(value);
      else if (name === "SUBPKG") cur.subpkg = words(value);
    } else if (tag === "D" && cur) cur.functions = words(parts[i++]!).filter((f) => !f.startsWith("__kiln") && f !== "source" && f !== ".");
    else if (tag === "" || tag === undefined) continue;
  }
  return out;
}

/** 1-based line of `NAME=` in a script, for error locations. */
export function lineOf(text: string, name: string): number | undefined {
  const i = text.split("\n").findIndex((l) => new RegExp(`^\\s*(export\\s+)?${name}=`).test(l));
  return i === -1 ? undefined : i + 1;
}
