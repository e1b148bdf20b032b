import type { Command } from "commander";
import { basename, resolve } from "node:path";
import { validate } from "../../config/diagnose.js";
import { loadProject } from "../../config/project.js";
import { readYaml } from "../../config/yaml.js";
import { KilnError, type Diagnostic } from "../../core/errors.js";
import { buildGraph } from "../../graph/graph.js";
import { action, type Invocation } from "../main.js";

async function validateFile(path: string): Promise<Diagnostic[]> {
  const parsed = await readYaml(resolve(path), path).catch((err: Error) => {
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

export function registerValidate(program: Command): void {
  const cmd = program
    .command("validate")
    .description("check the project (or the given files) and report every problem at once")
    .argument("[files...]", "single files to check: kiln.yml, build.yml, or linuxkit image specs (*.yml, *.yml.in); default: the whole project");
  cmd.action(
    action(cmd, async (inv: Invocation, files: string[]) => {
      if (files.length) {
        const diags = (await Promise.all(files.map(validateFile))).flat();
        if (diags.length) throw KilnError.fromDiagnostics(diags);
        return { data: { files, ok: true }, text: `${files.length} file${files.length > 1 ? "s" : ""} OK` };
      }
      const project = await loadProject(resolve(inv.globals.dir ?? "."));
      // Every architecture the project builds for must give a sound graph.
      for (const arch of project.archs) buildGraph(project, arch);
      const n = project.packages.size;
      return { data: { project: project.config.name, packages: n, archs: project.archs, ok: true }, text: `${project.config.name}: kiln.yml and ${n} packages OK for ${project.archs.join(", ")}` };
    }),
  );
}
