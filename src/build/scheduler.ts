import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Project } from "../config/project.js";
import { asKilnError, KilnError } from "../core/errors.js";
import type { EventBus } from "../core/events.js";
import { onCleanup, runSignal } from "../core/interrupt.js";
import type { Plan, PlanNode } from "../graph/plan.js";
import type { Records } from "../graph/records.js";
import { KEY_ANNOTATION, REF_ANNOTATION, type Descriptor, type Store } from "../store/layout.js";
import { readManifest, writeImage } from "../store/image.js";
import { BUILDERS } from "./builders/index.js";
import { writeLayer } from "./layer.js";
import { StepLog } from "./log.js";
import { closure, type Graph } from "../graph/graph.js";
import { acquireLock, type Lock } from "../store/lock.js";
import { remoteCacheOf } from "../oci/remote.js";
import { eachLimit } from "../oci/transfer.js";
import { pullOciPackage } from "./builders/oci.js";
import { downloadPath } from "./sources.js";

export interface BuildOptions {
  project: Project;
  graph: Graph;
  store: Store;
  bus: EventBus;
  outDir: string;
  jobs: number;
  offline: boolean;
  keepWork?: boolean;
  records: Records;
}

export interface TargetResult {
  id: string;
  ref: string;
  key: string;
  status: "built" | "cached" | "failed" | "skipped";
  manifest?: Descriptor;
  error?: KilnError;
  ms: number;
}

export function logPath(outDir: string, arch: string, name: string): string {
  return join(outDir, arch, "log", `${name}.log.gz`);
}

/**
 * Estimated seconds of work from each target to the end of the plan: its own
 * cost plus the longest chain of dependents after it. A step's own cost is
 * guessed from what it reads: the size of its downloads (a .deb is
 * decompressed at ~30 MB/s) plus a fixed start-up cost per step.
 */
async function criticalPaths(plan: Plan, store: Store): Promise<Map<string, number>> {
  const own = new Map<string, number>();
  await Promise.all(
    plan.order.map(async (id) => {
      const n = plan.nodes.get(id)!;
      if (n.cached) {
        own.set(id, 0); // no stat on a no-op build
        return;
      }
      const sizes = await Promise.all(Object.values(n.record.sources).map((sha) => stat(downloadPath(store, sha)).then((st) => st.size, () => 0)));
      own.set(id, 0.2 + sizes.reduce((a, b) => a + b, 0) / 30e6);
    }),
  );
  const dependents = new Map<string, string[]>(plan.order.map((id) => [id, []]));
  for (const id of plan.order) for (const d of plan.nodes.get(id)!.target.deps) dependents.get(d)?.push(id);
  const out = new Map<string, number>();
  for (const id of [...plan.order].reverse()) out.set(id, own.get(id)! + Math.max(0, ...dependents.get(id)!.map((x) => out.get(x) ?? 0)));
  return out;
}

/**
 * Run a plan with at most `jobs` steps at once. A failed target's dependents
 * are skipped; independent targets still finish; every failure is returned.
 * Per-key locks let several kiln processes share one store: the second waits
 * and then finds the first one's result.
 */
export async function runPlan(plan: Plan, opts: BuildOptions): Promise<TargetResult[]> {
  const results = new Map<string, TargetResult>();
  // Ready targets start in order of their critical path, longest first (as ninja and make -j
  // with priorities do): the kernel's .deb, which everything after it waits for, before small ones.
  const priority = await criticalPaths(plan, opts.store);
  const pending = new Set([...plan.order].sort((a, b) => priority.get(b)! - priority.get(a)!));
  // Cached targets take no job slot and wait for nothing: their images are in the store already.
  const index = await opts.store.readIndex();
  const byRef = new Map(index.manifests.map((m) => [m.annotations?.[REF_ANNOTATION], m]));
  const running = new Map<string, Promise<void>>();
  const started = Date.now();
  for (const message of plan.warnings ?? []) opts.bus.emit({ type: "warn", message });
  opts.bus.emit({ type: "plan", total: plan.order.length, toBuild: plan.order.filter((id) => !plan.nodes.get(id)!.cached).length, cached: plan.order.filter((id) => plan.nodes.get(id)!.cached).length });

  for (const id of plan.order) {
    const n = plan.nodes.get(id)!;
    const desc = n.cached ? byRef.get(n.ref) : undefined;
    if (!desc) continue;
    pending.delete(id);
    await opts.records.set(id, n.record);
    results.set(id, { id, ref: n.ref, key: n.key, status: "cached", manifest: desc, ms: 0 });
    opts.bus.emit({ type: "done", target: id, key: n.key, cached: true, ms: 0 });
  }
  const depsOf = (id: string) => plan.nodes.get(id)!.target.deps;
  while (pending.size || running.size) {
    if (!runSignal.aborted) {
      for (const id of [...pending]) {
        if (running.size >= opts.jobs) break;
        const deps = depsOf(id);
        const failedDep = deps.find((d) => results.get(d) && ["failed", "skipped"].includes(results.get(d)!.status));
        if (failedDep) {
          pending.delete(id);
          const n = plan.nodes.get(id)!;
          const error = new KilnError("E_DEP_FAILED", `${id} was not built because ${failedDep} failed`);
          results.set(id, { id, ref: n.ref, key: n.key, status: "skipped", error, ms: 0 });
          opts.bus.emit({ type: "skip", target: id, reason: `dependency ${failedDep} failed` });
          continue;
        }
        if (!deps.every((d) => results.get(d)?.status === "built" || results.get(d)?.status === "cached")) continue;
        pending.delete(id);
        running.set(id, runOne(plan, plan.nodes.get(id)!, results, opts).then((r) => {
          results.set(id, r);
          running.delete(id);
        }));
      }
    } else {
      pending.clear();
    }
    if (running.size) await Promise.race(running.values());
    else if (pending.size && !runSignal.aborted) throw new KilnError("E_INTERNAL", `scheduler stalled with ${[...pending].join(", ")}`);
  }
  await opts.records.save();
  const list = plan.order.filter((id) => results.has(id)).map((id) => results.get(id)!);
  if (!runSignal.aborted) await pushToRemoteCache(opts, list);
  opts.bus.emit({
    type: "summary",
    built: list.filter((r) => r.status === "built").length,
    cached: list.filter((r) => r.status === "cached").length,
    failed: list.filter((r) => r.status === "failed").length,
    skipped: list.filter((r) => r.status === "skipped").length,
    ms: Date.now() - started,
  });
  if (runSignal.aborted) throw new KilnError("E_INTERRUPTED", "interrupted; finished targets are kept, nothing partial was written");
  return list;
}

async function runOne(plan: Plan, node: PlanNode, results: Map<string, TargetResult>, opts: BuildOptions): Promise<TargetResult> {
  const id = node.target.id;
  const t0 = Date.now();
  const done = async (status: "built" | "cached", manifest: Descriptor, remote?: string): Promise<TargetResult> => {
    await opts.records.set(id, node.record);
    const ms = Date.now() - t0;
    opts.bus.emit({ type: "done", target: id, key: node.key, cached: status === "cached", ms, ...(remote ? { remote } : {}) });
    return { id, ref: node.ref, key: node.key, status, manifest, ms };
  };
  const existing = node.cached ? await opts.store.resolveRef(node.ref) : undefined;
  if (existing) return done("cached", existing);

  let lock: Lock;
  try {
    lock = await acquireLock(opts.store.lockPath(node.key), () => opts.bus.emit({ type: "wait", target: id, reason: "another kiln process is building it" }));
  } catch (err) {
    return fail(asKilnError(err));
  }
  let log: StepLog | undefined;
  const workDir = join(opts.outDir, ".work", plan.arch, node.target.pkg.name);
  const unregister = onCleanup(() => rm(workDir, { recursive: true, force: true }));
  try {
    const again = await opts.store.resolveRef(node.ref);
    if (again) return await done("cached", again);
    const remote = node.remote ? remoteCacheOf(opts.store)?.from.find((r) => r.name === node.remote) : undefined;
    if (remote) {
      try {
        const pulled = await remote.pullPackage(opts.store, node.ref, node.key, plan.arch);
        return await done("cached", pulled, remote.name);
      } catch (err) {
        opts.bus.emit({ type: "warn", message: `${id}: pulling from the remote cache ${remote.name} failed, building it: ${asKilnError(err).message}` });
      }
    }
    opts.bus.emit({ type: "start", target: id, key: node.key });
    log = await StepLog.create(logPath(opts.outDir, plan.arch, node.target.pkg.name));
    log.line(`kiln: building ${id} for ${plan.arch}, key ${node.key}`);
    await rm(workDir, { recursive: true, force: true });
    const depLayers = await layersOf(opts, results, closure(opts.graph, node.target.deps));
    const builderLabels: Record<string, string> = {};
    const step = {
      project: opts.project,
      pkg: node.target.pkg,
      node,
      store: opts.store,
      log,
      workDir,
      arch: plan.arch,
      offline: opts.offline,
      jobs: opts.jobs,
      depLayers,
      bus: opts.bus,
      labels: builderLabels,
    };
    if (node.target.pkg.recipe.kind === "oci") {
      // A third-party image: pulled (store as pull-through cache), not built from a layer.
      const manifest = await pullOciPackage(step);
      await opts.store.setRef(node.ref, { ...manifest, annotations: { [KEY_ANNOTATION]: node.key } });
      await log.close();
      return await done("built", manifest);
    }
    const entries = await BUILDERS[node.target.pkg.recipe.kind](step);
    const layer = await writeLayer(opts.store, entries, opts.project.sourceDateEpoch);
    const recipe = node.target.pkg.recipe;
    const labels: Record<string, string> = { ...builderLabels, ...recipe.labels, "dev.kiln.package": node.target.pkg.name, "dev.kiln.key": node.key };
    if (recipe.image?.linuxkit) labels["org.mobyproject.config"] = JSON.stringify(recipe.image.linuxkit);
    const manifest = await writeImage(opts.store, {
      arch: plan.arch,
      layers: [layer],
      created: opts.project.sourceDateEpoch,
      labels,
      entrypoint: recipe.image?.entrypoint,
      cmd: recipe.image?.cmd,
      env: recipe.image?.env,
      workdir: recipe.image?.workdir,
      annotations: { [KEY_ANNOTATION]: node.key },
    });
    await opts.store.setRef(node.ref, { ...manifest, annotations: { [KEY_ANNOTATION]: node.key } });
    log.line(`kiln: ${node.ref} = ${manifest.digest}`);
    await log.close();
    if (!opts.keepWork) await rm(workDir, { recursive: true, force: true });
    return await done("built", manifest);
  } catch (err) {
    const e = asKilnError(err);
    if (log) {
      log.line(`kiln: FAILED ${e.code}: ${e.message}`);
      await log.close();
    }
    return fail(e, log?.path);
  } finally {
    unregister();
    await lock.release();
  }

  function fail(e: KilnError, logFile?: string): TargetResult {
    opts.bus.emit({ type: "fail", target: id, code: e.code, message: e.message, log: logFile });
    return { id, ref: node.ref, key: node.key, status: "failed", error: e, ms: Date.now() - t0 };
  }
}

async function layersOf(opts: BuildOptions, results: Map<string, TargetResult>, ids: string[]): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  for (const id of ids) {
    const m = results.get(id)?.manifest;
    if (!m) continue;
    out.push(...(await readManifest(opts.store, m)).layers);
  }
  return out;
}

/** --cache-to: put every package of the run (built here or found in the store) into the registry; a failure is a warning. */
async function pushToRemoteCache(opts: BuildOptions, list: TargetResult[]): Promise<void> {
  const to = remoteCacheOf(opts.store)?.to;
  if (!to) return;
  const ok = list.filter((r) => (r.status === "built" || r.status === "cached") && r.manifest);
  let uploaded = 0;
  let sent = 0;
  await eachLimit(ok, 4, async (r) => {
    try {
      const s = await to.pushPackage(opts.store, r.ref, r.manifest!);
      uploaded += s.uploaded;
      if (!s.upToDate) sent++;
    } catch (err) {
      opts.bus.emit({ type: "warn", message: `${r.id}: pushing to the remote cache ${to.name} failed: ${asKilnError(err).message}` });
    }
  });
  opts.bus.emit({ type: "info", message: `remote cache ${to.name}: ${sent} of ${ok.length} packages pushed (${uploaded} blobs uploaded), the rest were there` });
}
