import { join } from "node:path";
import type { Project } from "../config/project.js";
import type { Store } from "../store/layout.js";
import { toolVersions } from "../store/tools.js";
import { describeChange, diffRecords } from "./explain.js";
import { closure, type Graph, type Target } from "./graph.js";
import type { Records } from "./records.js";
import { readLock } from "../debian/lockfile.js";
import { remoteCacheOf, type RemoteCache } from "../oci/remote.js";
import { eachLimit } from "../oci/transfer.js";
import { fileInputs, HashCache, KILN_FORMAT, keyOf, type KeyRecord, keySources, toolsFor } from "./inputs.js";

export interface PlanNode {
  target: Target;
  key: string;
  record: KeyRecord;
  /** The image reference in the store: ORG/NAME:TAG. */
  ref: string;
  cached: boolean;
  /** Why it will build (or "cached"). */
  reason: string;
  /** The registry of the remote cache (--cache-from) that has it: it will be pulled, not built. */
  remote?: string;
}

export interface Plan {
  arch: string;
  nodes: Map<string, PlanNode>;
  /** Ids in build order. */
  order: string[];
  /** Problems that did not stop planning (an unreachable remote cache). */
  warnings?: string[];
}

/** The image tag of a key: 40 hex digits, like linuxkit's tree-hash tags. */
export const tagOf = (key: string) => key.slice(0, 40);

export interface PlanOptions {
  arch: string;
  outDir: string;
  records: Records;
  /** Roots to build; all targets when empty. */
  roots?: string[];
  /** Registries to look uncached targets up in (default: the store's attached remote cache, see src/oci/remote.ts). */
  remote?: RemoteCache | false;
}

/**
 * Compute every target's key (dependencies first, since a key includes its
 * dependencies' keys) and ask the store which are already built. Reads files
 * and the store's index; runs nothing slow.
 */
export async function makePlan(project: Project, graph: Graph, store: Store, opts: PlanOptions): Promise<Plan> {
  const order = opts.roots?.length ? closure(graph, opts.roots) : graph.order;
  const allTools = [...new Set(order.flatMap((id) => toolsFor(graph.targets.get(id)!.pkg.recipe)))];
  const hashCache = new HashCache(join(store.kilnDir, "hashes.json"));
  const [tools, index, files] = await Promise.all([
    toolVersions(store, allTools),
    store.readIndex(),
    hashCache.load().then((c) => Promise.all(order.map((id) => fileInputs(project, graph.targets.get(id)!.pkg, c)))),
  ]);
  // kiln.lock pins the .debs of debian packages; read once, only when the plan has one.
  const lock = order.some((id) => graph.targets.get(id)!.pkg.recipe.kind === "debian") ? await readLock(project.root) : undefined;
  const refs = new Set(index.manifests.map((m) => m.annotations?.["org.opencontainers.image.ref.name"]));
  const nodes = new Map<string, PlanNode>();
  for (const [i, id] of order.entries()) {
    const target = graph.targets.get(id)!;
    const recipe = target.pkg.recipe;
    const record: KeyRecord = {
      format: KILN_FORMAT,
      target: id,
      kind: recipe.kind,
      arch: opts.arch,
      recipe,
      files: files[i]!,
      sources: keySources(project, target.pkg, opts.arch, lock),
      deps: Object.fromEntries(target.deps.map((d) => [d, nodes.get(d)!.key])),
      knobs: { sourceDateEpoch: project.sourceDateEpoch },
      tools: Object.fromEntries(toolsFor(recipe).map((t) => [t, tools[t]!])),
    };
    const key = keyOf(record);
    const ref = `${project.org}/${target.pkg.name}:${tagOf(key)}`;
    const cached = refs.has(ref);
    nodes.set(id, { target, key, record, ref, cached, reason: cached ? "cached" : "" });
  }
  await Promise.all(
    [...nodes.entries()].filter(([, n]) => !n.cached).map(async ([id, n]) => {
      const last = await opts.records.get(id);
      if (!last) n.reason = "never built";
      else {
        const changes = diffRecords(last, n.record);
        n.reason = changes.length ? changes.slice(0, 3).map(describeChange).join("; ") + (changes.length > 3 ? ` (+${changes.length - 3} more)` : "") : "not in the store";
      }
    }),
  );
  await hashCache.save();
  const warnings = await lookupRemote(nodes, opts.remote === false ? undefined : (opts.remote ?? remoteCacheOf(store)));
  return { arch: opts.arch, nodes, order, ...(warnings.length ? { warnings } : {}) };
}

/** One HEAD per uncached target and registry: which targets the remote cache has. */
async function lookupRemote(nodes: Map<string, PlanNode>, remote: RemoteCache | undefined): Promise<string[]> {
  const warnings: string[] = [];
  for (const r of remote?.from ?? []) {
    let broken = false;
    await eachLimit([...nodes.values()].filter((n) => !n.cached && !n.remote), 8, async (n) => {
      if (broken) return;
      try {
        if (await r.lookup(n.ref)) {
          n.remote = r.name;
          n.reason = `in the remote cache ${r.name}`;
        }
      } catch (err) {
        if (!broken) warnings.push(`remote cache ${r.name} not used: ${(err as Error).message}`);
        broken = true;
      }
    });
  }
  return warnings;
}
