import type { Command } from "commander";
import { access, readdir, readFile } from "node:fs/promises";
import { basename, join, relative, resolve } from "node:path";
import type { Project } from "../../config/project.js";
import { templatePath } from "../../variant/template.js";
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

/** Templates must be valid image specs and every modifier must parse (yq), all problems together. */
async function checkImages(project: Project): Promise<string[]> {
  const diags: Diagnostic[] = [];
  const checked: string[] = [];
  for (const kind of ["rootfs", "installer"] as const) {
    const tpl = templatePath(project, kind);
    if (!(await access(tpl).then(() => true, () => false))) continue;
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
  return checked;
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
