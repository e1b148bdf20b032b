import { availableParallelism } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { loadProject, type Project } from "../config/project.js";
import { ARCHS, archName } from "../config/archs.js";
import { didYouMean } from "../config/suggest.js";
import { KilnError } from "../core/errors.js";
import { EventBus } from "../core/events.js";
import { buildGraph, type Graph } from "../graph/graph.js";
import { Records } from "../graph/records.js";
import { defaultStoreDir, Store } from "../store/layout.js";
import { attachRemoteCache, type RemoteCache, resolveRemoteCache } from "../oci/remote.js";

/** Options every command accepts (see `kiln --help`). */
export interface GlobalOptions {
  dir?: string;
  store?: string;
  out?: string;
  arch?: string;
  /** Pygos trees: the product to work on (also KILN_PRODUCT); see src/pygos/select.ts. */
  product?: string;
  jobs?: string;
  offline?: boolean;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  keepWork?: boolean;
  /** `kiln build --cache-from REGISTRY` (repeatable) and `--cache-to REGISTRY`. */
  cacheFrom?: string[];
  cacheTo?: string;
}

export interface Context {
  project: Project;
  graph: Graph;
  store: Store;
  bus: EventBus;
  outDir: string;
  arch: string;
  jobs: number;
  offline: boolean;
  keepWork: boolean;
  records: Records;
  /** The remote cache (flags, KILN_CACHE_FROM/KILN_CACHE_TO, kiln.yml registry); none with --offline. */
  remote?: RemoteCache;
}

export function parseJobs(v?: string): number {
  // cores + 2, as ninja does: a build step spends much of its time starting processes and waiting
  // on the file system (measured: 200 small packages build in 11.4 s with -j 4 against 14.9 s with -j 2).
  if (v === undefined) return availableParallelism() + 2;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new KilnError("E_USAGE", `--jobs must be a whole number of at least 1, not '${v}'`);
  return n;
}

export async function openStore(g: GlobalOptions): Promise<Store> {
  return Store.open(resolve(g.store ?? defaultStoreDir()));
}

export interface OpenOptions {
  /** Plan a Pygos product's image for RELEASEPKG's key and default targets (src/pygos/product.ts planProduct); `kiln build --product` does it as it builds. */
  planProduct?: boolean;
}

/**
 * Load the project, its graph and the store for a command that works on a
 * project. For a Pygos product the output folder is the product's build root
 * (NAME/ in the current folder, out/NAME/ inside the tree, --out DIR/NAME/),
 * so every command finds the records of the product's builds.
 */
export async function openContext(g: GlobalOptions, bus: EventBus, o: OpenOptions = {}): Promise<Context> {
  const store = await openStore(g);
  const project = await loadProject(resolve(g.dir ?? "."), { cacheDir: join(store.kilnDir, "config-cache") });
  const product = project.pygos?.product;
  if (!project.pygos && g.product) {
    throw new KilnError("E_USAGE", `--product ${g.product}: ${project.root} is not a Pygos tree (no product/*.layers)`, { hint: "--product is for Pygos trees (docs/pygos.md)" });
  }
  const arch = g.arch ? archName(g.arch) : project.archs[0]!;
  if (!(ARCHS as readonly string[]).includes(arch)) {
    throw new KilnError("E_USAGE", `unknown architecture '${arch}'`, { hint: didYouMean(arch, ARCHS) ?? `one of: ${ARCHS.join(", ")}` });
  }
  if (!project.archs.includes(arch)) {
    throw new KilnError("E_BAD_VALUE", `architecture '${arch}' is not in the project's archs (${project.archs.join(", ")})`, { location: { file: project.file.display } });
  }
  const graph = buildGraph(project, arch);
  const out = g.out ? (isAbsolute(g.out) ? g.out : resolve(g.out)) : undefined;
  // Pygos's code loads only for a product (start-up of other commands stays as it was).
  const pygos = product !== undefined ? await import("../pygos/product.js") : undefined;
  const outDir = pygos ? pygos.productBuildRoot(project.root, process.cwd(), out, product!) : (out ?? join(project.root, "out"));
  const remote = resolveRemoteCache(project, { cacheFrom: g.cacheFrom, cacheTo: g.cacheTo, offline: !!g.offline, bus });
  attachRemoteCache(store, remote);
  const records = new Records(outDir, arch);
  if (pygos && o.planProduct !== false) await pygos.planProduct({ project, graph, store, arch, outDir, records });
  return {
    remote,
    project,
    graph,
    store,
    bus,
    outDir,
    arch,
    jobs: parseJobs(g.jobs),
    offline: !!g.offline,
    keepWork: !!g.keepWork,
    records,
  };
}
