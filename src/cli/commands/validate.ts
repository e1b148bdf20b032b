import type { Command } from "commander";
import { access, readdir, readFile } from "node:fs/promises";
import { basename, join, relative, resolve } from "node:path";
import type { Project } from "../../config/project.js";
import { composeTemplate, type ImageKind, templatePath } from "../../variant/template.js";
import { validate } from "../../config/diagnose.js";
import { loadProject } from "../../config/project.js";
import { readYaml } from "../../config/yaml.js";
import { KilnError, type Diagnostic } from "../../core/errors.js";
import { buildGraph } from "../../graph/graph.js";
import { action, type Invocation } from "../main.js";

async function validateFile(path: string, display = path): Promise<Diagnostic[]> {
  const parsed = await readYaml(resolve(path), display).catch((err: Error) => {
    throw new KilnError("E_SOURCE_MISSING", `cannot read ${path}: ${err.message}`);
  });
  if (!parsed.file) return parsed.diagnostics;
  const name = basename(path);
  const { projectSchema, recipeSchema } = await import("../../config/schema.js");
  if (name === "kiln.yml") return validate(projectSchema, parsed.file).diagnostics;
  if (name === "build.yml") return validate(recipeSchema, parsed.file).diagnostics;
  // Anything else is a linuxkit-format image spec (a plain linuxkit yml, or a template such as rootfs.yml.in).
  const { imageSpecSchema } = await import("../../config/image-spec.js");
  return validate(imageSpecSchema, parsed.file).diagnostics;
}

/** Templates must be valid image specs and every modifier must parse (yq); then every variant is composed and checked; all problems together. */
async function checkImages(project: Project): Promise<string[]> {
  const diags: Diagnostic[] = [];
  const checked: string[] = [];
  const kinds: ImageKind[] = [];
  for (const kind of ["rootfs", "installer"] as const) {
    const tpl = templatePath(project, kind);
    if (!(await access(tpl).then(() => true, () => false))) continue;
    kinds.push(kind);
    const rel = relative(project.root, tpl);
    diags.push(...(await validateFile(tpl, rel)));
    checked.push(rel);
  }
  const modDir = join(project.root, project.config.images?.modifiers ?? "images/modifiers");
  const mods = await listYq(modDir);
  if (mods.length) {
    const { parseYq } = await import("../../variant/yq/index.js");
    for (const m of mods) {
      const rel = relative(project.root, m);
      try {
        parseYq(await readFile(m, "utf8"), { file: rel, line: 1, col: 1 });
      } catch (err) {
        if (!(err instanceof KilnError)) throw err;
        diags.push({ code: err.code, message: err.message, location: err.location, hint: err.hint });
      }
    }
    checked.push(`${mods.length} modifier${mods.length > 1 ? "s" : ""}`);
  }
  if (diags.length) throw KilnError.fromDiagnostics(diags);
  const variants = await checkVariants(project, kinds);
  if (variants) checked.push(variants);
  return checked;
}

/**
 * Every allowed variant composed as a build would (template + its modifiers),
 * in memory, and checked: an image spec (what a modifier adds is checked too)
 * whose placeholders all name packages. Nothing is written: images/out/ stays
 * what the last build made. One problem found by several variants is
 * reported once.
 */
async function checkVariants(project: Project, kinds: ImageKind[]): Promise<string | undefined> {
  if (!kinds.length) return undefined;
  const [{ allVariants, defaultVersion }, { imageSpecSchema }, { referencedPackages }, { parseYaml }] = await Promise.all([
    import("../../variant/knobs.js"),
    import("../../config/image-spec.js"),
    import("../../variant/placeholders.js"),
    import("../../config/yaml.js"),
  ]);
  // a problem is told for the first variant that has it, naming the others (the same modifier is in many)
  const diags = new Map<string, { d: Diagnostic; first: string; also: Set<string> }>();
  let current = "";
  const note = (d: Diagnostic) => {
    const key = `${d.code} ${[d.message, d.location?.file ?? ""].map((s) => s.replaceAll(current, "")).join(" ")}:${d.location?.line}:${d.location?.col}`;
    const seen = diags.get(key);
    // (the archs of a variant share its images/out file)
    if (seen && seen.first !== current) seen.also.add(current);
    else if (!seen) diags.set(key, { d, first: current, also: new Set() });
  };
  const fromError = (err: unknown) => {
    if (!(err instanceof KilnError)) throw err;
    if (err.diagnostics?.length) err.diagnostics.forEach(note);
    else note({ code: err.code, message: err.message, location: err.location, hint: err.hint });
  };
  const variants = allVariants(project);
  const version = defaultVersion(project.root);
  for (const v of variants) {
    for (const kind of kinds) {
      current = `${kind}-${v.name}`;
      try {
        const tpl = await composeTemplate(project, { ...v, version }, kind);
        const display = relative(project.root, tpl.outIn);
        const parsed = parseYaml(tpl.text, tpl.outIn, display);
        if (!parsed.file) parsed.diagnostics.forEach(note);
        else validate(imageSpecSchema, parsed.file).diagnostics.forEach(note);
        referencedPackages(project, tpl.text, display);
      } catch (err) {
        fromError(err);
      }
    }
  }
  if (diags.size) {
    const told = [...diags.values()].map(({ d, also: set }) => {
      const also = [...set];
      const names = also.length > 4 ? `${also.slice(0, 4).join(", ")} and ${also.length - 4} more` : also.join(", ");
      const composed = d.location?.file.startsWith("images/out/") ? "the file as `kiln build` writes it (validate only composes it)" : undefined;
      return { ...d, hint: [d.hint, also.length ? `also in ${names}` : undefined, composed].filter(Boolean).join("; ") || undefined };
    });
    throw KilnError.fromDiagnostics(told);
  }
  return `${variants.length} variant${variants.length === 1 ? "" : "s"} composed`;
}

async function listYq(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((e) => e.name.endsWith(".yq")).map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)).sort();
}

export function registerValidate(program: Command): void {
  const cmd = program
    .command("validate")
    .description("check the project (or the given files) and report every problem at once")
    .argument("[files...]", "single files to check: kiln.yml, build.yml, or linuxkit image specs (*.yml, *.yml.in); default: the whole project");
  cmd.action(
    action(cmd, async (inv: Invocation, files: string[]) => {
      if (files.length) {
        const diags = (await Promise.all(files.map((f) => validateFile(f)))).flat();
        if (diags.length) throw KilnError.fromDiagnostics(diags);
        return { data: { files, ok: true }, text: `${files.length} file${files.length > 1 ? "s" : ""} OK` };
      }
      const project = await loadProject(resolve(inv.globals.dir ?? "."));
      // Every architecture the project builds for must give a sound graph.
      for (const arch of project.archs) buildGraph(project, arch);
      const checked = await checkImages(project);
      const n = project.packages.size;
      const text = `${project.config.name}: kiln.yml, ${n} packages${checked.length ? `, ${checked.join(", ")}` : ""} OK for ${project.archs.join(", ")}`;
      return { data: { project: project.config.name, packages: n, archs: project.archs, images: checked, ok: true }, text };
    }),
  );
}
