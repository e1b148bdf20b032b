import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join, relative } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import { sha256File, sha256Hex, stableJson } from "../core/hash.js";
import type { Package, Project } from "../config/project.js";
import type { Recipe } from "../config/schema.js";
import { lockedDebs, lockSources, type LockFile } from "../debian/lockfile.js";

/** Bump when the meaning of a key or the shape of outputs changes: every key changes with it. */
export const KILN_FORMAT = 1;

/**
 * Everything a target's output depends on, as named fields (wireit's
 * FingerprintData). The key is sha256(stableJson(record)); `kiln explain`
 * diffs two records field by field.
 */
export interface KeyRecord {
  format: number;
  target: string;
  kind: Recipe["kind"];
  arch: string;
  /** The parsed recipe: a change of meaning shows here, a reformatting does not. */
  recipe: Recipe;
  /** Every file of the package folder and every local source, by project-relative path: "sha256:…" plus "+x" when executable, or "-> target" for links. */
  files: Record<string, string>;
  /** Downloaded sources: url → sha256; for a debian package its locked .debs for this arch: "debian:NAME_VERSION_ARCH" → sha256. */
  sources: Record<string, string>;
  /** Keys of the packages this one is built with (whose keys cover their own deps). */
  deps: Record<string, string>;
  knobs: { sourceDateEpoch: number };
  /** Host tools the build runs, with their versions. */
  tools: Record<string, string>;
}

export function keyOf(record: KeyRecord): string {
  return sha256Hex(stableJson(record));
}

/**
 * File digests remembered by path with the file's size, mtime, ctime and
 * inode (git's index does the same): an unchanged file is not read again, so a
 * no-op plan of a large project costs stats, not reads. Any change to the file
 * changes its ctime, so a stale digest is never used.
 */
export class HashCache {
  private data: Record<string, [number, number, number, number, string]> = {};
  private dirty = false;

  constructor(private readonly file?: string) {}

  async load(): Promise<this> {
    if (this.file) this.data = JSON.parse(await readFile(this.file, "utf8").catch(() => "{}")) as typeof this.data;
    return this;
  }

  async digest(abs: string, st: { size: number; mtimeMs: number; ctimeMs: number; ino: number }): Promise<string> {
    const hit = this.data[abs];
    if (hit && hit[0] === st.size && hit[1] === st.mtimeMs && hit[2] === st.ctimeMs && hit[3] === st.ino) return hit[4];
    const d = await sha256File(abs, st.size);
    this.data[abs] = [st.size, st.mtimeMs, st.ctimeMs, st.ino, d];
    this.dirty = true;
    return d;
  }

  async save(): Promise<void> {
    if (this.file && this.dirty) await writeFileAtomic(this.file, JSON.stringify(this.data), { sync: false });
    this.dirty = false;
  }
}

/** Hash a file tree into `out` (path → digest). Sorted walk; links recorded by target, not followed. */
async function hashTree(root: string, abs: string, out: Record<string, string>, cache: HashCache): Promise<void> {
  const st = await lstat(abs).catch(() => undefined);
  if (!st) return;
  const rel = relative(root, abs);
  if (st.isSymbolicLink()) out[rel] = `-> ${await readlink(abs)}`;
  else if (st.isDirectory()) {
    const names = (await readdir(abs)).sort();
    await Promise.all(names.map((n) => hashTree(root, join(abs, n), out, cache)));
  } else if (st.isFile()) out[rel] = `sha256:${await cache.digest(abs, st)}${st.mode & 0o111 ? "+x" : ""}`;
}

/** Local paths a recipe reads that live outside its own package folder. */
function externalPaths(pkg: Package): string[] {
  const r = pkg.recipe;
  const paths = r.kind === "files" ? r.files.flatMap((f) => (f.source ? [f.source] : [])) : r.kind === "script" ? (r.sources ?? []).flatMap((s) => (s.path ? [s.path] : [])) : [];
  // A Pygos script may source another package's script (as vendor kernels do): that file is an input too.
  const sourced = r.kind === "pygos" ? (pkg.sourced ?? []) : [];
  return [...paths.map((p) => join(pkg.dir, p)), ...sourced].filter((p) => relative(pkg.dir, p).startsWith(".."));
}

export async function fileInputs(project: Project, pkg: Package, cache: HashCache = new HashCache()): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  await hashTree(project.root, pkg.dir, files, cache);
  for (const p of externalPaths(pkg)) await hashTree(project.root, p, files, cache);
  // Sorted keys: stableJson sorts too, but listings read better this way.
  return Object.fromEntries(Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1)));
}

export function toolsFor(recipe: Recipe): string[] {
  if (recipe.kind === "script") return ["bash", "bwrap", "tar", ...(recipe.tools ?? [])];
  if (recipe.kind === "pygos") {
    const tc = recipe.toolchain;
    return ["bash", "bwrap", "tar", "patch", "make", ...(tc.kind === "source" ? [] : [`${tc.target}-gcc`])];
  }
  return [];
}

export function downloadSources(recipe: Recipe): Record<string, string> {
  if (recipe.kind === "pygos") return recipe.meta.tarball ? { [`${recipe.meta.url.replace(/\/+$/, "")}/${recipe.meta.tarball}`]: recipe.meta.sha256 } : {};
  if (recipe.kind !== "script") return {};
  return Object.fromEntries((recipe.sources ?? []).flatMap((s) => (s.url && s.sha256 ? [[s.url, s.sha256]] : [])));
}

/** The `sources` of a key record: a script's downloads, or a debian package's locked .debs (from kiln.lock, read once per plan). */
export function keySources(project: Project, pkg: Package, arch: string, lock: LockFile | undefined): Record<string, string> {
  return pkg.recipe.kind === "debian" ? lockSources(lockedDebs(project, lock, pkg, arch)) : downloadSources(pkg.recipe);
}
