import { parseStanzas } from "./control.js";

/**
 * The list of installed packages that goes with a debian layer, for SBOMs:
 * name, version, architecture, source package and the licenses the
 * package's /usr/share/doc/NAME/copyright states.
 */
export interface InstalledPackage {
  name: string;
  version: string;
  architecture: string;
  source: string;
  sourceVersion: string;
  /** License names as the copyright file writes them (Debian short names such as GPL-2+, not always SPDX ids). */
  licenses: string[];
  /** "copyright-format": the License fields of a machine-readable copyright file; "guess": the common-licenses it refers to; "none": nothing found. */
  licenseFrom: "copyright-format" | "guess" | "none";
}

/** The layer path of the list; also the image label `dev.kiln.debian.packages` (compact JSON). */
export const PACKAGES_JSON = "/var/lib/kiln/debian-packages.json";
export const PACKAGES_LABEL = "dev.kiln.debian.packages";

/**
 * Licenses from a copyright file. A machine-readable one (DEP-5,
 * copyright-format/1.0) gives the first line of each `License:` field of its
 * `Files:` paragraphs, in order, each once. Otherwise a guess: the files under
 * /usr/share/common-licenses it names (GPL-2, LGPL-2.1, Apache-2.0, ...),
 * plus Expat when it carries the MIT permission text.
 */
export function copyrightLicenses(text: string | undefined): Pick<InstalledPackage, "licenses" | "licenseFrom"> {
  if (!text) return { licenses: [], licenseFrom: "none" };
  const paras = parseStanzas(text);
  const head = paras[0];
  if (head && (head.Format !== undefined || head["Format-Specification"] !== undefined) && /copyright-format|dep5|DEP-?5/i.test(head.Format ?? head["Format-Specification"] ?? "")) {
    const out: string[] = [];
    for (const p of paras) {
      if (p.Files === undefined || !p.License) continue;
      const name = p.License.split("\n")[0]!.trim();
      if (name && !out.includes(name)) out.push(name);
    }
    if (out.length) return { licenses: out, licenseFrom: "copyright-format" };
  }
  const out: string[] = [];
  for (const m of text.matchAll(/\/usr\/share\/common-licenses\/([A-Za-z0-9.+-]+[A-Za-z0-9+])/g)) if (!out.includes(m[1]!)) out.push(m[1]!);
  if (/Permission is hereby granted, free of charge/i.test(text) && !out.includes("Expat")) out.push("Expat");
  return out.length ? { licenses: out, licenseFrom: "guess" } : { licenses: [], licenseFrom: "none" };
}

/** One package's entry, from its control file and copyright text. */
export function installedPackage(control: string, copyright: string | undefined): InstalledPackage {
  const f = parseStanzas(control)[0] ?? {};
  const src = /^(\S+)(?:\s+\((\S+)\))?$/.exec((f.Source ?? "").trim());
  return {
    name: f.Package ?? "",
    version: f.Version ?? "",
    architecture: f.Architecture ?? "",
    source: src?.[1] ?? f.Package ?? "",
    sourceVersion: src?.[2] ?? f.Version ?? "",
    ...copyrightLicenses(copyright),
  };
}

/** By name, then architecture. */
export function sortPackages(list: InstalledPackage[]): InstalledPackage[] {
  return [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.architecture < b.architecture ? -1 : a.architecture > b.architecture ? 1 : 0));
}

/** The file's text: one package per line, sorted, so a version bump is a one-line diff. */
export function formatPackageList(list: InstalledPackage[]): string {
  return `[\n${sortPackages(list).map((p) => JSON.stringify(p)).join(",\n")}\n]\n`;
}
