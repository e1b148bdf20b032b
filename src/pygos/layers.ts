import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { KilnError } from "../core/errors.js";
import { sha256Hex } from "../core/hash.js";

/**
 * Pygos configuration layers: `product/<product>.layers` names layers in
 * order, `layer/<layer>/` holds their files. How each file combines across
 * layers is a table (the one place to look): merged lists, shell evaluated in
 * layer order, or the last layer's copy.
 */
export type MergeRule = "list" | "shell" | "override";

const RULES: Record<string, MergeRule> = { ROOTFS: "list", LDPATH: "list", TOOLCHAIN: "shell", INIT: "shell" };

export function ruleOf(rel: string): MergeRule {
  return RULES[rel] ?? "override";
}

export interface Layer {
  name: string;
  dir: string;
}

export interface LayerFile {
  /** Layer-relative path ("TOOLCHAIN", "interfaces/port0"). */
  rel: string;
  layer: string;
  abs: string;
  sha256: string;
  text: Buffer;
}

export interface ProductLayers {
  product: string;
  /** Absolute path of product/<product>.layers (LAYERCONF). */
  layerConf: string;
  layers: Layer[];
  /** Every file of every layer, in layer order. */
  files: LayerFile[];
}

async function isDir(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isDirectory(), () => false);
}

/** A folder is a Pygos tree when it has product/*.layers or pkg/<name>/build scripts. */
export async function isPygosTree(root: string): Promise<boolean> {
  if ((await listProducts(root)).length) return true;
  const pkg = join(root, "pkg");
  if (!(await isDir(pkg))) return false;
  for (const d of await readdir(pkg)) {
    if (await stat(join(pkg, d, "build")).then((s) => s.isFile(), () => false)) return true;
  }
  return false;
}

export async function listProducts(root: string): Promise<string[]> {
  const names = await readdir(join(root, "product")).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith(".layers")).map((n) => n.slice(0, -".layers".length)).sort();
}

/** The layers of a product, in order; a layer that does not exist is an error at its line. */
export async function readLayers(root: string, product: string): Promise<ProductLayers> {
  const layerConf = join(root, "product", `${product}.layers`);
  const text = await readFile(layerConf, "utf8");
  const layers: Layer[] = [];
  for (const [i, raw] of text.split("\n").entries()) {
    const name = raw.replace(/#.*/, "").trim();
    if (!name) continue;
    const dir = join(root, "layer", name);
    if (!/^[\w.+-]+$/.test(name) || !(await isDir(dir))) {
      throw new KilnError("E_PYGOS_LAYER", `product ${product} names the layer '${name}', but layer/${name}/ does not exist`, {
        location: { file: `product/${product}.layers`, line: i + 1, col: raw.indexOf(name) + 1 },
        hint: `create layer/${name}/ or remove the line`,
      });
    }
    layers.push({ name, dir });
  }
  const files: LayerFile[] = [];
  for (const l of layers) {
    for (const rel of await walk(l.dir, "")) {
      const abs = join(l.dir, rel);
      const buf = await readFile(abs);
      files.push({ rel, layer: l.name, abs, sha256: sha256Hex(buf), text: buf });
    }
  }
  return { product, layerConf, layers, files };
}

async function walk(dir: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(join(dir, prefix), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walk(dir, rel)));
    else if (e.isFile()) out.push(rel);
  }
  return out;
}

/** Every layer's copy of a file, in layer order. */
export function copiesOf(p: ProductLayers, rel: string): LayerFile[] {
  return p.files.filter((f) => f.rel === rel);
}

/** The last layer's copy (override), if any layer has the file. */
export function overrideOf(p: ProductLayers, rel: string): LayerFile | undefined {
  return copiesOf(p, rel).at(-1);
}

/** A merged list file (ROOTFS, LDPATH): words of every layer's copy, comments dropped, first occurrence kept. */
export function mergedList(p: ProductLayers, rel: string): { word: string; file: string; line: number }[] {
  const out: { word: string; file: string; line: number }[] = [];
  const seen = new Set<string>();
  for (const f of copiesOf(p, rel)) {
    for (const [i, line] of f.text.toString("utf8").split("\n").entries()) {
      for (const word of line.replace(/#.*/, "").split(/\s+/).filter(Boolean)) {
        if (seen.has(word)) continue;
        seen.add(word);
        out.push({ word, file: `layer/${f.layer}/${rel}`, line: i + 1 });
      }
    }
  }
  return out;
}

/** The effective set of override files (every layer-relative path once, from the last layer that has it). */
export function effectiveFiles(p: ProductLayers): Map<string, LayerFile> {
  const out = new Map<string, LayerFile>();
  for (const f of p.files) if (ruleOf(f.rel) === "override") out.set(f.rel, f);
  return out;
}

/** Identity of a product's configuration: the layer list and every file's digest. */
export function layersDigest(p: ProductLayers): string {
  return sha256Hex(JSON.stringify([p.product, p.layers.map((l) => l.name), p.files.map((f) => [f.layer, f.rel, f.sha256])]));
}
