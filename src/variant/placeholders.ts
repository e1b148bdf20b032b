import { basename } from "node:path";
import type { Project } from "../config/project.js";
import { closest } from "../config/suggest.js";
import { KilnError } from "../core/errors.js";

const TAG_RE = /\b([A-Z][A-Z0-9_]*)_TAG\b/g;
const PKG_RE = /@pkg:([^\s"']+)/g;

/** The package a FOO_BAR_TAG names: foo-bar or foo_bar, whichever exists (parse-pkgs.sh's naming). */
function packageForTag(project: Project, stem: string): string | undefined {
  const lower = stem.toLowerCase();
  for (const cand of [lower.replace(/_/g, "-"), lower]) if (project.packages.has(cand)) return cand;
  return undefined;
}

export function tagNameOf(pkg: string): string {
  return `${pkg.toUpperCase().replace(/[-.]/g, "_")}_TAG`;
}

/**
 * Find the packages a composed yml refers to (FOO_TAG, @pkg:path/foo). Only
 * these get built for the variant, lazily. Unknown names are errors that list
 * the close matches.
 */
export function referencedPackages(project: Project, text: string, where: string): string[] {
  const found = new Set<string>();
  const problems: string[] = [];
  for (const m of text.matchAll(TAG_RE)) {
    const pkg = packageForTag(project, m[1]!);
    if (pkg) found.add(pkg);
    else problems.push(`${m[0]}${suggest(project, m[0])}`);
  }
  for (const m of text.matchAll(PKG_RE)) {
    const name = basename(m[1]!.replace(/\/+$/, ""));
    if (project.packages.has(name)) found.add(name);
    else problems.push(`${m[0]}${suggest(project, tagNameOf(name))}`);
  }
  if (problems.length) {
    throw new KilnError("E_UNKNOWN_PLACEHOLDER", `${where} refers to packages that do not exist: ${problems.join(", ")}`, {
      hint: `placeholders are <PACKAGE>_TAG (${[...project.packages.keys()].slice(0, 4).map(tagNameOf).join(", ")}…) or @pkg:pkg/<name>`,
    });
  }
  return [...found].sort();
}

function suggest(project: Project, tag: string): string {
  const c = closest(tag, [...project.packages.keys()].map(tagNameOf));
  return c ? ` (did you mean ${c}?)` : "";
}

/** Replace every placeholder with the image reference of its package. */
export function substitute(project: Project, text: string, refs: Map<string, string>): string {
  return text
    .replace(TAG_RE, (all, stem: string) => refs.get(packageForTag(project, stem) ?? "") ?? all)
    .replace(PKG_RE, (all, p: string) => refs.get(basename(p.replace(/\/+$/, ""))) ?? all);
}
