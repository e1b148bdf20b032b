import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import type { PygosRecipe } from "../config/schema.js";
import { didYouMean } from "../config/suggest.js";
import { writeFileAtomic } from "../core/atomic.js";
import { type Diagnostic, KilnError } from "../core/errors.js";
import { copiesOf, layersDigest, listProducts, type ProductLayers, readLayers } from "./layers.js";
import { lineOf, type ScriptMeta, scriptMetadata } from "./meta.js";
import { evalShellFiles, type ShellVar } from "./shell.js";
import { resolveToolchain, type Toolchain } from "./toolchain.js";

/** A Pygos tree as loaded for one product (or for none: the host's toolchain, no layers). */
export interface PygosProject {
  products: string[];
  product?: string;
  layers?: ProductLayers;
  toolchainVars: Map<string, ShellVar>;
  initVars: Map<string, ShellVar>;
  toolchain: Toolchain;
  /** Binary package (a SUBPKG entry, or the source package's own name) → source package. */
  providers: Map<string, string>;
  meta: Map<string, ScriptMeta>;
}

export interface PygosPackage {
  name: string;
  dir: string;
  script: string;
  display: string;
  recipe: PygosRecipe;
}

/** Variables of the build environment that a script can read besides TOOLCHAIN's; their values enter its key when it names them. */
const ENV_READS = ["PRODUCT", "OS_NAME", "OS_RELEASE"];
/** TOOLCHAIN variables that shape every compiled file (the compiler and its flags): in every package's key. */
const CORE_VARS = ["TARGET", "TC_KIND", "TC_HARDENING"];

interface VarsCache {
  toolchain: [string, ShellVar][];
  init: [string, ShellVar][];
}

/** TOOLCHAIN and INIT of a product, each sourced in layer order; cached by the layers' digest. */
async function productVars(root: string, layers: ProductLayers, cacheDir?: string): Promise<VarsCache> {
  const file = cacheDir ? join(cacheDir, `pygos-product-${layersDigest(layers).slice(0, 32)}.json`) : undefined;
  const hit = file ? (JSON.parse(await readFile(file, "utf8").catch(() => "null")) as VarsCache | null) : null;
  if (hit) return hit;
  const env = layerEnv(root, layers);
  const at = (rel: string) => ({ file: `layer/${copiesOf(layers, rel).at(-1)?.layer ?? "?"}/${rel}` });
  const toolchain = await evalShellFiles(copiesOf(layers, "TOOLCHAIN").map((f) => f.abs), env, at("TOOLCHAIN"));
  const init = await evalShellFiles(copiesOf(layers, "INIT").map((f) => f.abs), env, at("INIT"));
  const out = { toolchain: [...toolchain], init: [...init] };
  if (file) await writeFileAtomic(file, JSON.stringify(out), { sync: false });
  return out;
}

export function layerEnv(root: string, layers: ProductLayers | undefined): Record<string, string> {
  return {
    SCRIPTDIR: root,
    ...(layers ? { PRODUCT: layers.product, LAYERCONF: layers.layerConf, KILN_LAYERDIRS: layers.layers.map((l) => l.dir).join("\n") } : {}),
  };
}

function scalar(vars: Map<string, ShellVar>, name: string): string | undefined {
  const v = vars.get(name);
  return v && !v.array ? v.value : undefined;
}

/** `$NAME` and `${NAME…` in shell text. */
function namesIn(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) out.add(m[1]!);
  return out;
}

function mentions(text: string, word: string): boolean {
  const esc = word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\w.-])${esc}($|[^\\w-])`, "m").test(text);
}

export interface LoadPygosOptions {
  product?: string;
  cacheDir?: string;
}

/**
 * Load the pkg/<name>/build scripts of a tree for a product: the product's
 * layers, its TOOLCHAIN and INIT (sourced in layer order), every script's
 * variables, and what each package reads (the TOOLCHAIN variables and layer
 * files it names), which is what enters its key.
 */
export async function loadPygos(root: string, names: string[], opts: LoadPygosOptions): Promise<{ project: PygosProject; packages: PygosPackage[]; diagnostics: Diagnostic[] }> {
  const products = await listProducts(root);
  const product = opts.product ?? (products.length === 1 ? products[0] : undefined);
  if (product !== undefined && !products.includes(product)) {
    throw new KilnError("E_PYGOS_PRODUCT", `no product '${product}' (no product/${product}.layers)`, {
      hint: didYouMean(product, products) ?? (products.length ? `products: ${products.join(", ")}` : "create product/<name>.layers listing its layers"),
    });
  }
  const layers = product !== undefined ? await readLayers(root, product) : undefined;
  const vars = layers ? await productVars(root, layers, opts.cacheDir) : { toolchain: [], init: [] };
  const toolchainVars = new Map(vars.toolchain);
  const tcWhere = { file: layers ? `layer/${copiesOf(layers, "TOOLCHAIN").at(-1)?.layer ?? "?"}/TOOLCHAIN` : `product/${product ?? "?"}.layers` };
  const toolchain = resolveToolchain(toolchainVars, names, tcWhere);
  const scripts = names.map((n) => join(root, "pkg", n, "build"));
  const meta = await scriptMetadata(scripts, {
    root,
    toolchainFiles: layers ? copiesOf(layers, "TOOLCHAIN").map((f) => f.abs) : [],
    env: layerEnv(root, layers),
    cacheDir: opts.cacheDir,
  });
  const diagnostics: Diagnostic[] = [];
  const providers = new Map<string, string>();
  for (const n of names) {
    const m = meta.get(join(root, "pkg", n, "build"));
    for (const bin of m?.subpkg.length ? m.subpkg : [n]) {
      const other = providers.get(bin);
      if (other && other !== n) diagnostics.push({ code: "E_BAD_VALUE", message: `the binary package '${bin}' comes from both pkg/${other} and pkg/${n}`, location: { file: `pkg/${n}/build` } });
      providers.set(bin, n);
    }
  }
  for (const n of names) if (!providers.has(n)) providers.set(n, n);
  const envValues: Record<string, string> = { PRODUCT: product ?? "", OS_NAME: scalar(toolchainVars, "OS_NAME") ?? "Pygos" };
  const packages: PygosPackage[] = [];
  for (const n of names) {
    const script = join(root, "pkg", n, "build");
    const m = meta.get(script)!;
    const display = relative(root, script);
    const texts = (await Promise.all([script, ...m.sourced].map((p) => readFile(p, "utf8").catch(() => "")))).join("\n");
    const named = namesIn(texts);
    const reads: Record<string, string> = {};
    for (const v of [...new Set([...CORE_VARS, ...[...named].filter((x) => toolchainVars.has(x) || ENV_READS.includes(x))])].sort()) {
      if (v === "OS_RELEASE") reads[v] = osRelease(root);
      else if (toolchainVars.has(v)) reads[v] = toolchainVars.get(v)!.value;
      else if (v in envValues) reads[v] = envValues[v]!;
    }
    const layerFiles: Record<string, string[]> = {};
    if (layers) {
      for (const rel of [...new Set(layers.files.map((f) => f.rel))].sort()) {
        if (mentions(texts, rel.split("/")[0]!)) layerFiles[rel] = copiesOf(layers, rel).map((f) => `${f.layer}:sha256:${f.sha256}`);
      }
    }
    const depends: string[] = [];
    const text = await readFile(script, "utf8");
    for (const d of m.depends) {
      const src = providers.get(d);
      if (src) {
        if (src !== n) depends.push(src);
        continue;
      }
      diagnostics.push({
        code: "E_MISSING_DEP",
        message: `pkg/${n} depends on '${d}', which no package provides`,
        location: { file: display, line: lineOf(text, "DEPENDS") },
        hint: didYouMean(d, providers.keys()) ?? `create pkg/${d}/build`,
      });
    }
    const isTc = toolchain.packages.includes(n);
    if (!isTc) for (const t of toolchain.packages) if (providers.get(t) && !depends.includes(t)) depends.push(t);
    packages.push({
      name: n,
      dir: join(root, "pkg", n),
      script,
      display,
      recipe: {
        kind: "pygos",
        version: m.version || undefined,
        depends: [...new Set(depends)],
        script: display,
        product,
        meta: { version: m.version, url: m.url, tarball: m.tarball, sha256: m.sha256, srcdir: m.srcdir, depends: m.depends, subpkg: m.subpkg },
        reads,
        layerFiles,
        toolchain: { kind: toolchain.kind, target: toolchain.target, packages: toolchain.packages },
      },
    });
  }
  return { project: { products, product, layers, toolchainVars, initVars: new Map(vars.init), toolchain, providers, meta }, packages, diagnostics };
}

let release: string | undefined;

/** OS_RELEASE: `git describe` of the tree (as Pygos), asked only when a script names it. */
export function osRelease(root: string): string {
  if (release !== undefined) return release;
  try {
    release = execFileSync("git", ["-C", root, "describe", "--always", "--tags", "--dirty"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    release = "unknown";
  }
  return release;
}
