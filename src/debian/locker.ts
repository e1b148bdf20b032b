import type { Package, Project } from "../config/project.js";
import type { DebianRecipe } from "../config/schema.js";
import { didYouMean } from "../config/suggest.js";
import { locate } from "../config/yaml.js";
import { KilnError } from "../core/errors.js";
import type { Store } from "../store/layout.js";
import { debianSettings, fetchRelease, loadUniverse, type DebianSettings, type ReleaseInfo } from "./archive.js";
import { expandArch, formatLock, LOCK_VERSION, type LockedDeb, type LockFile, type LockRecipe, readLock, requestOf, sameRequest, writeLock } from "./lockfile.js";
import { resolve, type Universe } from "./resolve.js";

export interface LockOptions {
  /** Re-resolve every entry (or those of `names`), not only the missing ones. */
  update: boolean;
  /** Recipes to work on (default: every debian package). */
  names?: string[];
  /** Architectures to lock (default: the project's). */
  archs?: string[];
  offline: boolean;
  /** Compute, but do not write kiln.lock (check-update). */
  dryRun?: boolean;
  log?: (line: string) => void;
}

export interface LockChange {
  recipe: string;
  arch: string;
  action: "kept" | "locked" | "updated" | "unchanged";
  packages: number;
  added: string[];
  removed: string[];
  changed: string[];
  /** Dependencies left out because they name an excluded package. */
  skipped: string[];
}

export interface LockResult {
  lock: LockFile;
  settings?: DebianSettings;
  changes: LockChange[];
  written: boolean;
  verified?: string;
}

function diffDebs(before: LockedDeb[] | undefined, after: LockedDeb[]): Pick<LockChange, "added" | "removed" | "changed"> {
  const a = new Map((before ?? []).map((d) => [d.name, d]));
  const b = new Map(after.map((d) => [d.name, d]));
  return {
    added: [...b.values()].filter((d) => !a.has(d.name)).map((d) => `${d.name} ${d.version}`).sort(),
    removed: [...a.values()].filter((d) => !b.has(d.name)).map((d) => `${d.name} ${d.version}`).sort(),
    changed: [...b.values()].filter((d) => a.has(d.name) && (a.get(d.name)!.version !== d.version || a.get(d.name)!.sha256 !== d.sha256)).map((d) => `${d.name} ${a.get(d.name)!.version} → ${d.version}`).sort(),
  };
}

function debianPackages(project: Project, names?: string[]): Package[] {
  const all = [...project.packages.values()].filter((p) => p.recipe.kind === "debian").sort((a, b) => (a.name < b.name ? -1 : 1));
  if (!names?.length) return all;
  return names.map((n) => {
    const name = n.replace(/^pkg\//, "");
    const p = project.packages.get(name);
    if (!p || p.recipe.kind !== "debian") {
      throw new KilnError("E_UNKNOWN_TARGET", `'${n}' is not a debian package of this project`, { hint: didYouMean(name, all.map((x) => x.name)) ?? `debian packages: ${all.map((x) => x.name).join(", ") || "none"}` });
    }
    return p;
  });
}

/**
 * Bring kiln.lock up to date. Plain: entries that still match their recipe
 * (same package list, same suite) are kept as they are, and only missing
 * ones are resolved, so the network is touched only when something is
 * missing. With `update`, the chosen recipes are resolved again against the
 * mirror's current index.
 */
export async function lockProject(project: Project, store: Store, opts: LockOptions): Promise<LockResult> {
  const old = await readLock(project.root);
  const settings = await debianSettings(project, old);
  const pkgs = debianPackages(project, opts.names);
  const suiteChanged = !!old && old.suite !== settings.suite;
  const componentsChanged = !!old && JSON.stringify(old.components) !== JSON.stringify(settings.components);
  const lock: LockFile = { lockVersion: LOCK_VERSION, mirror: settings.mirror, suite: settings.suite, components: settings.components, recipes: {} };
  // Recipes not chosen this time keep their entries (when names were given); others are rebuilt below.
  const chosen = new Set(pkgs.map((p) => p.name));
  const debianNames = new Set(debianPackages(project).map((p) => p.name));
  for (const [name, r] of Object.entries(old?.recipes ?? {})) if (!chosen.has(name) && debianNames.has(name)) lock.recipes[name] = r;

  let release: ReleaseInfo | undefined;
  const universes = new Map<string, Universe>();
  const universe = async (arch: string) => {
    release ??= await fetchRelease(settings, { offline: opts.offline, store, log: opts.log });
    let u = universes.get(arch);
    if (!u) {
      u = await loadUniverse(settings, release, arch, { offline: opts.offline, store, log: opts.log });
      universes.set(arch, u);
    }
    return u;
  };

  const changes: LockChange[] = [];
  for (const pkg of pkgs) {
    const recipe = pkg.recipe as DebianRecipe;
    const request = requestOf(recipe);
    const prev = old?.recipes[pkg.name];
    const reuse = !opts.update && !suiteChanged && !componentsChanged && prev && sameRequest(prev.request, request);
    const archs = (opts.archs ?? project.archs).filter((a) => !recipe.arch || recipe.arch.includes(a as never));
    const entry: LockRecipe = { request, archs: {} };
    // Archs not asked for this time stay as they were, when the entry is still valid.
    if (reuse && opts.archs) for (const [a, l] of Object.entries(prev.archs)) if (project.archs.includes(a)) entry.archs[a] = l;
    for (const arch of archs) {
      const before = prev?.archs[arch];
      if (reuse && before) {
        entry.archs[arch] = before;
        changes.push({ recipe: pkg.name, arch, action: "kept", packages: before.length, added: [], removed: [], changed: [], skipped: [] });
        continue;
      }
      let res;
      try {
        res = resolve(await universe(arch), { packages: recipe.packages.map((x) => expandArch(x, arch)), exclude: recipe.exclude?.map((x) => expandArch(x, arch)), essential: recipe.essential });
      } catch (err) {
        if (err instanceof KilnError && !err.location && (err.code === "E_DEBIAN_RESOLVE" || err.code === "E_BAD_VALUE")) {
          throw new KilnError(err.code, `pkg/${pkg.name} (${arch}): ${err.message}`, { location: locate(pkg.file, ["packages"]), details: err.details, hint: err.hint });
        }
        throw err;
      }
      const debs: LockedDeb[] = res.packages.map((p) => ({ name: p.name, version: p.version, architecture: p.architecture, filename: p.filename, size: p.size, sha256: p.sha256 }));
      for (const d of debs) {
        if (!/^[0-9a-f]{64}$/.test(d.sha256) || !d.filename) throw new KilnError("E_DEBIAN_INDEX", `the index entry of ${d.name} ${d.version} has no SHA256 or Filename`, { hint: "use a mirror whose Packages files carry SHA256 (every Debian mirror does)" });
      }
      entry.archs[arch] = debs;
      const d = diffDebs(before, debs);
      const action = !before ? "locked" : d.added.length || d.removed.length || d.changed.length ? "updated" : "unchanged";
      changes.push({ recipe: pkg.name, arch, action, packages: debs.length, ...d, skipped: res.skipped });
    }
    lock.recipes[pkg.name] = entry;
  }
  const empty = !Object.keys(lock.recipes).length;
  const written = !opts.dryRun && (old ? formatLock(old) !== formatLock(lock) : !empty);
  if (written) await writeLock(project.root, lock);
  return { lock, settings, changes, written, verified: release?.verified };
}
