import { stat } from "node:fs/promises";
import type { DebianRecipe } from "../../config/schema.js";
import { locate } from "../../config/yaml.js";
import { KilnError } from "../../core/errors.js";
import { stableJson } from "../../core/hash.js";
import { pathFilter } from "../../debian/glob.js";
import { Installer } from "../../debian/install.js";
import { expandArch, type LockedDeb, lockedDebs, lockSources, readLock } from "../../debian/lockfile.js";
import { PACKAGES_LABEL, sortPackages } from "../../debian/manifest.js";
import type { LayerEntry } from "../layer.js";
import { fetchSource } from "../sources.js";
import type { BuildStep } from "../step.js";

/** Labels a builder may add to the image config, when the scheduler passes the object (see docs/debian.md). */
type StepWithLabels = BuildStep & { labels?: Record<string, string> };

/**
 * A `debian` package: the .debs pinned in kiln.lock for this arch, fetched
 * once into the shared download cache (sha256 and size checked), their
 * data.tar streamed straight into layer entries in install order (two
 * packages writing one path is an error unless `overwrite` allows it),
 * filtered by `paths`, then what the recipe's usrmerge, busyboxLinks,
 * accounts and ldconfig ask for, the package list and a dpkg database. No
 * maintainer script runs.
 */
export async function buildDebian(step: BuildStep): Promise<LayerEntry[]> {
  const recipe = step.pkg.recipe as DebianRecipe;
  const lock = await readLock(step.project.root);
  const debs = lockedDebs(step.project, lock, step.pkg, step.arch);
  if (stableJson(lockSources(debs)) !== stableJson(step.node.record.sources)) {
    throw new KilnError("E_DEBIAN_UNLOCKED", "kiln.lock changed while this build was running", { location: locate(step.pkg.file, ["packages"]), hint: "run the build again" });
  }
  const mirror = (step.project.config.debian?.mirror ?? lock!.mirror).replace(/\/+$/, "");
  step.log.line(`${debs.length} packages from ${mirror} (suite ${lock!.suite})`);
  const inst = new Installer({
    keep: pathFilter(recipe.paths?.map((p) => expandArch(p, step.arch))),
    overwrite: recipe.overwrite?.map((p) => expandArch(p, step.arch)),
    workDir: step.workDir,
    log: (line) => step.log.line(line),
  });
  const at = (err: unknown) => {
    // Problems of the package set are shown at the recipe.
    if (err instanceof KilnError && !err.location && ["E_DEBIAN_CONFLICT", "E_DEBIAN_PATH", "E_DEBIAN_SCRIPT"].includes(err.code)) {
      return new KilnError(err.code, `pkg/${step.pkg.name} (${step.arch}): ${err.message}`, { location: locate(step.pkg.file, ["packages"]), details: err.details, hint: err.hint });
    }
    return err;
  };
  let entries: LayerEntry[];
  try {
    // Fetch and read several .debs at once (decompression is the slow part); merge them in install order.
    const contents = await mapLimit(debs, Math.max(1, Math.min(4, step.jobs)), async (d) => inst.read(d, await fetchDeb(step, mirror, d)));
    for (const c of contents) inst.merge(c);
    entries = await inst.finish({ arch: step.arch, usrmerge: recipe.usrmerge, busyboxLinks: recipe.busyboxLinks, accounts: recipe.accounts, ldconfig: recipe.ldconfig, epoch: step.project.sourceDateEpoch });
  } catch (err) {
    throw at(err);
  }
  // The package list for SBOMs: in the layer (unless `paths` leaves it out), and as an image label where the scheduler takes labels from builders.
  const labels = (step as StepWithLabels).labels;
  if (labels) labels[PACKAGES_LABEL] = JSON.stringify(sortPackages(inst.packageList()));
  step.log.line(`${entries.length} entries`);
  return entries;
}

/** Run `fn` on every item, `limit` at a time, results in order; after a failure nothing new starts, and the first error is thrown once the running ones end. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const bad = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (bad) throw bad.reason;
  return out;
}

async function fetchDeb(step: BuildStep, mirror: string, d: LockedDeb): Promise<string> {
  const url = `${mirror}/${d.filename}`;
  const location = () => locate(step.pkg.file, ["packages"]);
  let path: string;
  try {
    path = await fetchSource(step.store, url, d.sha256, { offline: step.offline, location, onProgress: (m) => step.log.line(m) });
  } catch (err) {
    if (!(err instanceof KilnError)) throw err;
    if (err.code === "E_SOURCE_CHECKSUM") {
      const got = /has sha256 ([0-9a-f]{64})/.exec(err.message)?.[1] ?? "?";
      throw new KilnError("E_DEBIAN_CHECKSUM", `${d.name} ${d.version} (${url}) has sha256 ${got}, but kiln.lock pins ${d.sha256}`, {
        location: { file: "kiln.lock" },
        hint: "kiln.lock was edited or the mirror serves another file; run kiln lock --update if the mirror is trusted",
      });
    }
    if (err.code === "E_SOURCE_FETCH" && step.offline && /--offline forbids/.test(err.message)) {
      throw new KilnError("E_SOURCE_FETCH", `${d.name} ${d.version} (${d.filename}) is not in the download cache, and --offline forbids downloading it from ${mirror}`, {
        location: location(),
        hint: "run the build once without --offline to fill the cache (it is shared by all projects using this store)",
      });
    }
    if (err.code === "E_SOURCE_FETCH" && /HTTP (404|410)|ENOENT/.test(err.message)) {
      throw new KilnError("E_DEBIAN_GONE", `${d.name} ${d.version} is no longer on ${mirror} (${d.filename}: ${/HTTP \d+|ENOENT/.exec(err.message)?.[0]})`, {
        location: location(),
        hint: "run kiln lock --update to pin the versions the mirror has now (or set debian.mirror to a snapshot.debian.org URL that still has it)",
      });
    }
    throw err;
  }
  const size = (await stat(path)).size;
  if (size !== d.size) {
    throw new KilnError("E_DEBIAN_CHECKSUM", `${d.name} ${d.version} is ${size} bytes, but kiln.lock pins ${d.size}`, { location: { file: "kiln.lock" }, hint: "run kiln lock --update" });
  }
  return path;
}

