import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Package, Project } from "../config/project.js";
import type { DebianRecipe } from "../config/schema.js";
import { locate } from "../config/yaml.js";
import { writeFileAtomic } from "../core/atomic.js";
import { KilnError } from "../core/errors.js";

/**
 * kiln.lock: the Debian packages of every `debian` recipe, pinned per
 * architecture by version, file name, size and sha256. JSON with one package
 * per line, so a version bump is a one-line diff. Builds read only this file.
 */
export const LOCK_FILE = "kiln.lock";
export const LOCK_VERSION = 1;

export interface LockedDeb {
  name: string;
  version: string;
  architecture: string;
  /** Path under the mirror, e.g. pool/main/b/busybox/busybox-static_1.35.0-4+b3_amd64.deb. */
  filename: string;
  size: number;
  sha256: string;
}

/** What a recipe asks for; an entry whose request differs from the recipe's is stale. */
export interface LockRequest {
  packages: string[];
  exclude: string[];
  essential: boolean;
}

export interface LockRecipe {
  request: LockRequest;
  /** arch → packages in install order (dependencies first). */
  archs: Record<string, LockedDeb[]>;
}

export interface LockFile {
  lockVersion: number;
  mirror: string;
  suite: string;
  components: string[];
  recipes: Record<string, LockRecipe>;
}

/** `${ARCH}` in a recipe's package names, excludes and paths is the Debian architecture (kiln's names are Debian's). */
export function expandArch(s: string, arch: string): string {
  return s.replaceAll("${ARCH}", arch);
}

const uniqSorted = (a: string[]) => [...new Set(a.map((s) => s.trim().replace(/\s+/g, " ")))].sort();

export function requestOf(recipe: DebianRecipe): LockRequest {
  return { packages: uniqSorted(recipe.packages), exclude: uniqSorted(recipe.exclude ?? []), essential: !!recipe.essential };
}

export function sameRequest(a: LockRequest, b: LockRequest): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function invalid(why: string): KilnError {
  return new KilnError("E_LOCK_INVALID", `${LOCK_FILE} cannot be read: ${why}`, {
    location: { file: LOCK_FILE },
    hint: "restore it from version control, or delete it and run kiln lock",
  });
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);
const isStrs = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");

function checkDeb(d: unknown, where: string): LockedDeb {
  if (!isObj(d)) throw invalid(`${where} is not an object`);
  for (const k of ["name", "version", "architecture", "filename", "sha256"] as const) if (typeof d[k] !== "string") throw invalid(`${where}.${k} is missing`);
  if (typeof d.size !== "number" || !Number.isInteger(d.size) || d.size < 0) throw invalid(`${where}.size is not a size`);
  if (!/^[0-9a-f]{64}$/.test(d.sha256 as string)) throw invalid(`${where}.sha256 is not 64 lower-case hex digits`);
  if ((d.filename as string).includes("..") || (d.filename as string).startsWith("/")) throw invalid(`${where}.filename must be a path under the mirror`);
  return { name: d.name as string, version: d.version as string, architecture: d.architecture as string, filename: d.filename as string, size: d.size, sha256: d.sha256 as string };
}

/** Parse and check the lock's shape; undefined when there is none. */
export function parseLock(text: string): LockFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw invalid(`not valid JSON (${(err as Error).message})`);
  }
  if (!isObj(raw)) throw invalid("not a JSON object");
  if (raw.lockVersion !== LOCK_VERSION) throw invalid(`lockVersion ${String(raw.lockVersion)} is not ${LOCK_VERSION}`);
  if (typeof raw.mirror !== "string" || typeof raw.suite !== "string" || !isStrs(raw.components) || !isObj(raw.recipes)) throw invalid("mirror, suite, components or recipes is missing");
  const recipes: Record<string, LockRecipe> = {};
  for (const [name, r] of Object.entries(raw.recipes)) {
    if (!isObj(r) || !isObj(r.request) || !isObj(r.archs)) throw invalid(`recipes.${name} needs request and archs`);
    const q = r.request;
    if (!isStrs(q.packages) || !isStrs(q.exclude) || typeof q.essential !== "boolean") throw invalid(`recipes.${name}.request is malformed`);
    const archs: Record<string, LockedDeb[]> = {};
    for (const [arch, list] of Object.entries(r.archs)) {
      if (!Array.isArray(list)) throw invalid(`recipes.${name}.archs.${arch} is not a list`);
      archs[arch] = list.map((d, i) => checkDeb(d, `recipes.${name}.archs.${arch}[${i}]`));
    }
    recipes[name] = { request: { packages: q.packages, exclude: q.exclude, essential: q.essential }, archs };
  }
  return { lockVersion: LOCK_VERSION, mirror: raw.mirror, suite: raw.suite, components: raw.components, recipes };
}

export async function readLock(root: string): Promise<LockFile | undefined> {
  const text = await readFile(join(root, LOCK_FILE), "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined;
    throw e;
  });
  return text === undefined ? undefined : parseLock(text);
}

const j = JSON.stringify;

/** Deterministic text: fixed key order, recipes and archs sorted by name, one package per line. */
export function formatLock(lock: LockFile): string {
  const out: string[] = ["{", `  "lockVersion": ${lock.lockVersion},`, `  "mirror": ${j(lock.mirror)},`, `  "suite": ${j(lock.suite)},`, `  "components": ${j(lock.components)},`, `  "recipes": {`];
  const names = Object.keys(lock.recipes).sort();
  names.forEach((name, ri) => {
    const r = lock.recipes[name]!;
    out.push(`    ${j(name)}: {`);
    out.push(`      "request": {"packages": ${j(r.request.packages)}, "exclude": ${j(r.request.exclude)}, "essential": ${r.request.essential}},`);
    out.push(`      "archs": {`);
    const archs = Object.keys(r.archs).sort();
    archs.forEach((arch, ai) => {
      const list = r.archs[arch]!;
      const comma = ai < archs.length - 1 ? "," : "";
      if (!list.length) {
        out.push(`        ${j(arch)}: []${comma}`);
        return;
      }
      out.push(`        ${j(arch)}: [`);
      list.forEach((d, di) => {
        out.push(`          {"name": ${j(d.name)}, "version": ${j(d.version)}, "architecture": ${j(d.architecture)}, "size": ${d.size}, "sha256": ${j(d.sha256)}, "filename": ${j(d.filename)}}${di < list.length - 1 ? "," : ""}`);
      });
      out.push(`        ]${comma}`);
    });
    out.push("      }");
    out.push(`    }${ri < names.length - 1 ? "," : ""}`);
  });
  out.push("  }", "}", "");
  return out.join("\n");
}

export async function writeLock(root: string, lock: LockFile): Promise<void> {
  await writeFileAtomic(join(root, LOCK_FILE), formatLock(lock));
}

/**
 * The locked .debs of a debian package for one architecture, or an error at
 * the recipe that says to run `kiln lock`: no lock, no entry, an entry made
 * for another package list, or for another suite than kiln.yml names.
 */
export function lockedDebs(project: Project, lock: LockFile | undefined, pkg: Package, arch: string): LockedDeb[] {
  const recipe = pkg.recipe as DebianRecipe;
  const where = () => locate(pkg.file, ["packages"]);
  const unlocked = (msg: string, hint = "run kiln lock") => new KilnError("E_DEBIAN_UNLOCKED", msg, { location: where(), hint });
  if (!lock) throw unlocked(`pkg/${pkg.name} is a debian package, but the project has no ${LOCK_FILE}`);
  const suite = project.config.debian?.suite;
  if (suite && suite !== lock.suite) throw unlocked(`${LOCK_FILE} pins packages of suite ${lock.suite}, but kiln.yml asks for ${suite}`, "run kiln lock --update");
  const entry = lock.recipes[pkg.name];
  if (!entry) throw unlocked(`pkg/${pkg.name} has no entry in ${LOCK_FILE}`);
  const want = requestOf(recipe);
  if (!sameRequest(entry.request, want)) {
    const diff = (["packages", "exclude", "essential"] as const).filter((k) => j(entry.request[k]) !== j(want[k])).map((k) => `${k} ${j(entry.request[k])} → ${j(want[k])}`);
    throw unlocked(`the ${LOCK_FILE} entry of pkg/${pkg.name} no longer matches its recipe (${diff.join("; ")})`);
  }
  const debs = entry.archs[arch];
  if (!debs) throw unlocked(`${LOCK_FILE} has no ${arch} packages for pkg/${pkg.name} (it has: ${Object.keys(entry.archs).sort().join(", ") || "none"})`);
  return debs;
}

/** The key record's view of the locked .debs: "debian:NAME_VERSION_ARCH" → sha256. */
export function lockSources(debs: LockedDeb[]): Record<string, string> {
  return Object.fromEntries(debs.map((d) => [`debian:${d.name}_${d.version}_${d.architecture}`, d.sha256]));
}
