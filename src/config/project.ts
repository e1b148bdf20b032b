import { access, readdir } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { KilnError, type Diagnostic } from "../core/errors.js";
import { validate } from "./diagnose.js";
import { checkRecipe } from "./recipe-rules.js";
import { projectSchema, recipeSchema, type ProjectConfig, type Recipe } from "./schema.js";
import { didYouMean } from "./suggest.js";
import { locate, readYaml, type YamlFile } from "./yaml.js";

export interface Package {
  name: string;
  /** Absolute path of the package folder. */
  dir: string;
  recipe: Recipe;
  file: YamlFile;
}

export interface Project {
  root: string;
  config: ProjectConfig;
  file: YamlFile;
  packages: Map<string, Package>;
  org: string;
  archs: string[];
  sourceDateEpoch: number;
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

/** Walk up from `start` to the folder holding kiln.yml. */
export async function findProjectRoot(start: string): Promise<string> {
  let dir = resolve(start);
  for (;;) {
    if (await exists(join(dir, PROJECT_FILE))) return dir;
    const up = dirname(dir);
    if (up === dir) {
      throw new KilnError("E_PROJECT_NOT_FOUND", `no ${PROJECT_FILE} in ${resolve(start)} or any parent folder`, {
        hint: "run kiln inside a project, or pass -C DIR",
      });
    }
    dir = up;
  }
}

export function hostArch(): string {
  return ({ x64: "amd64", arm64: "arm64", riscv64: "riscv64" } as Record<string, string>)[process.arch] ?? process.arch;
}

/**
 * Load kiln.yml and every pkg/<name>/build.yml, validating all of them and
 * reporting every problem in every file together.
 */
export async function loadProject(start: string): Promise<Project> {
  const root = await findProjectRoot(start);
  const diagnostics: Diagnostic[] = [];
  const main = await readYaml(join(root, PROJECT_FILE), PROJECT_FILE);
  diagnostics.push(...main.diagnostics);
  let config: ProjectConfig | undefined;
  if (main.file) {
    const v = validate(projectSchema, main.file);
    diagnostics.push(...v.diagnostics);
    config = v.value;
  }
  const pkgRoot = join(root, config?.packages ?? "pkg");
  const packages = new Map<string, Package>();
  const names = (await exists(pkgRoot)) ? (await readdir(pkgRoot, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort() : [];
  const loaded = await Promise.all(
    names.map(async (name) => {
      const dir = join(pkgRoot, name);
      const recipePath = join(dir, RECIPE_FILE);
      if (!(await exists(recipePath))) return undefined;
      const display = relative(root, recipePath);
      return { name, dir, display, parsed: await readYaml(recipePath, display) };
    }),
  );
  for (const item of loaded) {
    if (!item) continue;
    diagnostics.push(...item.parsed.diagnostics);
    if (!item.parsed.file) continue;
    if (!/^[a-z0-9][a-z0-9._-]*$/.test(item.name)) {
      diagnostics.push({ code: "E_BAD_VALUE", message: `package folder name '${item.name}' is not a valid package name`, location: { file: item.display }, hint: "use lower-case letters, digits, '.', '_' and '-'" });
      continue;
    }
    const v = validate(recipeSchema, item.parsed.file);
    diagnostics.push(...v.diagnostics);
    const pkg: Package = { name: item.name, dir: item.dir, recipe: (v.value ?? item.parsed.file.data) as Recipe, file: item.parsed.file };
    diagnostics.push(...(await checkRecipe(pkg, root)));
    if (v.value) packages.set(item.name, pkg);
  }
  diagnostics.push(...missingDependencies(packages, new Set(loaded.flatMap((l) => (l ? [l.name] : [])))));
  if (diagnostics.length || !config || !main.file) throw KilnError.fromDiagnostics(onePerPlace(diagnostics));
  const envEpoch = Number(process.env.SOURCE_DATE_EPOCH);
  return {
    root,
    config,
    file: main.file,
    packages,
    org: config.org ?? "kiln",
    archs: config.archs ?? [hostArch()],
    sourceDateEpoch: config.sourceDateEpoch ?? (Number.isInteger(envEpoch) && envEpoch >= 0 ? envEpoch : 0),
  };
}
