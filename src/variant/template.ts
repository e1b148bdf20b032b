import { access, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import type { Project } from "../config/project.js";
import { parseYaml, stringifyYaml } from "../config/yaml.js";
import { KilnError } from "../core/errors.js";
import type { Variant } from "./knobs.js";

export type ImageKind = "rootfs" | "installer";

export interface ComposedTemplate {
  kind: ImageKind;
  /** The yml after modifiers and EVE_HV/EVE_PLATFORM/EVE_VERSION, before tag resolution. */
  text: string;
  /** Modifier files applied, in order (project-relative). */
  modifiers: string[];
  /** Where `text` was written: images/out/<kind>-<variant>.yml.in */
  outIn: string;
  /** Where the resolved yml goes: images/out/<kind>-<variant>.yml */
  out: string;
  templateDir: string;
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(() => true, () => false);
}

/**
 * The modifiers for a variant, in EVE's order (its Makefile's
 * find-modifiers-rootfs / find-modifiers-installer), each when it exists:
 * hv/<HV>.yq, then platform/<P>/rootfs-<flavor>.yq (a rootfs with a flavor)
 * or platform/<P>/installer.yq (the installer), then platform/<P>/<P>.yq.
 * readFile follows symlinks, as EVE's shared modifiers need.
 */
export async function modifiersFor(project: Project, variant: Variant, kind: ImageKind): Promise<string[]> {
  const dir = join(project.root, project.config.images?.modifiers ?? "images/modifiers");
  const out: string[] = [];
  const hv = join(dir, "hv", `${variant.hv}.yq`);
  if (await exists(hv)) out.push(hv);
  const pdir = join(dir, "platform", variant.platform);
  const specific = kind === "installer" ? ["installer.yq"] : variant.flavor ? [`rootfs-${variant.flavor}.yq`] : [];
  for (const name of [...specific, `${variant.platform}.yq`]) if (await exists(join(pdir, name))) out.push(join(pdir, name));
  return out;
}

export function templatePath(project: Project, kind: ImageKind): string {
  return join(project.root, project.config.images?.[kind] ?? `images/${kind}.yml.in`);
}

/** Template + modifiers + EVE_* substitutions: the text for images/out/<kind>-<variant>.yml.in (EVE's compose-image-yml.sh; the caller writes it). */
export async function composeTemplate(project: Project, variant: Variant, kind: ImageKind): Promise<ComposedTemplate> {
  const tpl = templatePath(project, kind);
  const display = relative(project.root, tpl);
  const text = await readFile(tpl, "utf8").catch(() => {
    throw new KilnError("E_SOURCE_MISSING", `the ${kind} template ${display} does not exist`, { hint: `create it, or set images.${kind} in kiln.yml` });
  });
  const parsed = parseYaml(text, tpl, display);
  if (!parsed.file) throw KilnError.fromDiagnostics(parsed.diagnostics);
  let doc: unknown = parsed.file.data;
  const modifiers = await modifiersFor(project, variant, kind);
  const { applyYq } = modifiers.length ? await import("./yq/index.js") : { applyYq: undefined };
  for (const m of modifiers) {
    doc = applyYq!(doc, await readFile(m, "utf8"), { file: relative(project.root, m), line: 1, col: 1 });
  }
  const composed = stringifyYaml(doc)
    .replaceAll("EVE_HV", variant.hv)
    .replaceAll("EVE_PLATFORM", variant.platform)
    .replaceAll("EVE_VERSION", `${variant.version}-${variant.hv}-${variant.arch}`);
  const outDir = join(project.root, "images", "out");
  const base = `${kind}-${variant.name}`;
  const outIn = join(outDir, `${base}.yml.in`);
  return { kind, text: composed, modifiers: modifiers.map((m) => relative(project.root, m)), outIn, out: join(outDir, `${base}.yml`), templateDir: join(tpl, "..") };
}
