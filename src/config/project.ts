import { access, readdir, readFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { KilnError, type Diagnostic } from "../core/errors.js";
import { sha256Hex } from "../core/hash.js";
import { isPygosTree } from "../pygos/layers.js";
import { loadPygos, type PygosProject } from "../pygos/load.js";
import { selectedProduct } from "../pygos/select.js";
import { type ConfigCache, openConfigCache } from "./cache.js";
import { checkRecipe } from "./recipe-rules.js";
import type { ProjectConfig, Recipe } from "./schema.js";
import { didYouMean } from "./suggest.js";
import { locate, parseYaml, YamlFile } from "./yaml.js";
import { KILN_ROOT } from "../core/paths.js";

export interface Package {
  name: string;
  /** Absolute path of the package folder. */
  dir: string;
  recipe: Recipe;
  file: YamlFile;
  /** Pygos packages: files outside the package folder that the script sources. */
  sourced?: string[];
}

export interface Project {
  root: string;
  config: ProjectConfig;
  file: YamlFile;
  packages: Map<string, Package>;
  org: string;
  archs: string[];
  sourceDateEpoch: number;
  /** A Pygos tree (product/, layer/, pkg/<name>/build scripts), as loaded for the selected product. */
  pygos?: PygosProject;
}

export const PROJECT_FILE = "kiln.yml";
export const RECIPE_FILE = "build.yml";

async function exists(p: string): Promise<boolean> {
  return access(p).then(() => true, () => false);
}

/** The schema and the rules may both object to one value (a bad mode): report it once. */
function onePerPlace(diags: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diags.filter((d) => {
    const k = d.location ? `${d.location.file}:${d.location.line}:${d.location.col}` : `${d.code}:${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Every `depends` entry must name a package of the project. */
function missingDependencies(packages: Map<string, Package>, names: Set<string>): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const pkg of packages.values()) {
    // Pygos scripts name binary packages; their loader reports unknown ones at the script's DEPENDS line.
    if (pkg.recipe.kind === "pygos") continue;
    for (const [i, dep] of (pkg.recipe.depends ?? []).entries()) {
      if (names.has(dep)) continue;
      out.push({
        code: "E_MISSING_DEP",
        message: `package '${pkg.name}' depends on '${dep}', which does not exist`,
        location: locate(pkg.file, ["depends", i]),
        hint: didYouMean(dep, names) ?? `create pkg/${dep}/build.yml`,
      });
    }
  }
  return out;
}

/** Walk up from `start` to the folder holding kiln.yml, or a Pygos tree (product/, pkg/<name>/build). */
export async function findProjectRoot(start: string): Promise<string> {
  let dir = resolve(start);
  for (;;) {
    if ((await exists(join(dir, PROJECT_FILE))) || (await isPygosTree(dir))) return dir;
    const up = dirname(dir);
    if (up === dir) {
      throw new KilnError("E_PROJECT_NOT_FOUND", `no ${PROJECT_FILE} in ${resolve(start)} or any parent folder`, {
        hint: "run kiln inside a project, or pass -C DIR",
      });
    }
    dir = up;
  }
}

/** A project name from a folder name (a Pygos tree has no kiln.yml to name it). */
function treeName(root: string): string {
  return basename(root).toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[^a-z0-9]+/, "") || "pygos";
}

export function hostArch(): string {
  return ({ x64: "amd64", arm64: "arm64", riscv64: "riscv64" } as Record<string, string>)[process.arch] ?? process.arch;
}

/** Changes whenever the schema module changes, so a cached validation is never trusted across versions. */
async function schemaStamp(): Promise<string> {
  return sha256Hex(await readFile(join(KILN_ROOT, "dist", "config", "schema.js")));
}

interface Loaded<T> {
  file?: YamlFile;
  value?: T;
  diagnostics: Diagnostic[];
}

/** Read, parse and validate one file, or take its validated value from the cache when its text is unchanged. */
async function loadFile<T>(path: string, display: string, which: "project" | "recipe", cache: ConfigCache): Promise<Loaded<T>> {
  const text = await readFile(path, "utf8");
  const hit = cache.get(path, text);
  if (hit !== undefined) return { file: new YamlFile(path, display, text, hit), value: hit as T, diagnostics: [] };
  const parsed = parseYaml(text, path, display);
  if (!parsed.file) return { diagnostics: parsed.diagnostics };
  const [{ validate }, schemas] = await Promise.all([import("./diagnose.js"), import("./schema.js")]);
  const schema = (which === "project" ? schemas.projectSchema : schemas.recipeSchema) as import("zod").ZodType<unknown>;
  const v = validate(schema, parsed.file);
  if (v.value !== undefined && !v.diagnostics.length) cache.set(path, text, v.value);
  return { file: parsed.file, value: v.value as T | undefined, diagnostics: v.diagnostics };
}

export interface LoadOptions {
  /** Folder for the validated-config cache (kept in the store); none: no cache. */
  cacheDir?: string;
}

/**
 * Load kiln.yml and every pkg/<name>/build.yml, validating all of them and
 * reporting every problem in every file together.
 */
export async function loadProject(start: string, opts: LoadOptions = {}): Promise<Project> {
  const root = await findProjectRoot(start);
  const cache = await openConfigCache(opts.cacheDir, await schemaStamp(), root);
  const diagnostics: Diagnostic[] = [];
  // A Pygos tree needs no kiln.yml: its name is the folder's.
  const main = (await exists(join(root, PROJECT_FILE)))
    ? await loadFile<ProjectConfig>(join(root, PROJECT_FILE), PROJECT_FILE, "project", cache)
    : { file: new YamlFile(join(root, PROJECT_FILE), PROJECT_FILE, "", {}), value: { name: treeName(root) } as ProjectConfig, diagnostics: [] };
  diagnostics.push(...main.diagnostics);
  const config = main.value;
  const pkgRoot = join(root, config?.packages ?? "pkg");
  const packages = new Map<string, Package>();
  const names = (await exists(pkgRoot)) ? (await readdir(pkgRoot, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort() : [];
  const pygosNames: string[] = [];
  const loaded = await Promise.all(
    names.map(async (name) => {
      const dir = join(pkgRoot, name);
      const recipePath = join(dir, RECIPE_FILE);
      if (!(await exists(recipePath))) {
        if (await exists(join(dir, "build"))) pygosNames.push(name);
        return undefined;
      }
      const display = relative(root, recipePath);
      return { name, dir, display, loaded: await loadFile<Recipe>(recipePath, display, "recipe", cache) };
    }),
  );
  for (const item of loaded) {
    if (!item) continue;
    diagnostics.push(...item.loaded.diagnostics);
    const file = item.loaded.file;
    if (!file) continue;
    if (!/^[a-z0-9][a-z0-9._-]*$/.test(item.name)) {
      diagnostics.push({ code: "E_BAD_VALUE", message: `package folder name '${item.name}' is not a valid package name`, location: { file: item.display }, hint: "use lower-case letters, digits, '.', '_' and '-'" });
      continue;
    }
    const pkg: Package = { name: item.name, dir: item.dir, recipe: (item.loaded.value ?? file.data) as Recipe, file };
    diagnostics.push(...(await checkRecipe(pkg, root)));
    if (item.loaded.value) packages.set(item.name, pkg);
  }
  let pygos: PygosProject | undefined;
  if (pygosNames.length || (await exists(join(root, "product")))) {
    pygosNames.sort();
    const p = await loadPygos(root, pygosNames, { product: selectedProduct(), cacheDir: opts.cacheDir });
    pygos = p.project;
    diagnostics.push(...p.diagnostics);
    for (const pp of p.packages) packages.set(pp.name, { name: pp.name, dir: pp.dir, recipe: pp.recipe, file: new YamlFile(pp.script, pp.display, "", {}), sourced: p.project.meta.get(pp.script)?.sourced });
  }
  diagnostics.push(...missingDependencies(packages, new Set([...loaded.flatMap((l) => (l ? [l.name] : [])), ...pygosNames])));
  if (diagnostics.length || !config || !main.file) throw KilnError.fromDiagnostics(onePerPlace(diagnostics));
  await cache.save();
  const envEpoch = Number(process.env.SOURCE_DATE_EPOCH);
  return {
    root,
    config,
    file: main.file,
    packages,
    org: config.org ?? "kiln",
    archs: config.archs ?? [pygos?.toolchain.arch ?? hostArch()],
    sourceDateEpoch: config.sourceDateEpoch ?? (Number.isInteger(envEpoch) && envEpoch >= 0 ? envEpoch : 0),
    ...(pygos ? { pygos } : {}),
  };
}
