import { execFile, execFileSync } from "node:child_process";
import type { Project } from "../config/project.js";
import { archName, ARCHS, ROOTFS_FORMATS } from "../config/archs.js";
import type { KnobMatch } from "../config/schema.js";
import { didYouMean } from "../config/suggest.js";
import { locate } from "../config/yaml.js";
import { KilnError } from "../core/errors.js";

/** The knobs of EVE's make, by their command-line names. */
export const KNOBS = ["ZARCH", "HV", "PLATFORM", "FLAVOR", "ROOTFS_FORMAT", "ROOTFS_VERSION"] as const;
export type KnobName = (typeof KNOBS)[number];
export type Knobs = Partial<Record<KnobName, string>>;

export interface Variant {
  arch: string;
  hv: string;
  platform: string;
  flavor?: string;
  format: string;
  version: string;
  /** "kvm-generic" or "kvm-generic-evaluation": the output folder and images/out suffix. */
  name: string;
}

/** EVE's defaults where kiln.yml says nothing: kvm (mini on riscv64), generic, squashfs. */
const EVE_DEFAULTS = { hv: { amd64: "kvm", arm64: "kvm", riscv64: "mini" } as Record<string, string>, platform: "generic", format: "squashfs" };

/** Split command-line words into targets and KNOB=VALUE settings (make's spelling). */
export function splitKnobWords(words: string[], sets: string[] = []): { targets: string[]; knobs: Knobs } {
  const knobs: Knobs = {};
  const targets: string[] = [];
  for (const w of [...sets, ...words]) {
    const m = /^([A-Za-z][A-Za-z0-9_]*)=(.*)$/.exec(w);
    if (!m) {
      targets.push(w);
      continue;
    }
    const name = m[1]!.toUpperCase() as KnobName;
    if (!(KNOBS as readonly string[]).includes(name)) {
      throw new KilnError("E_USAGE", `unknown knob ${m[1]}`, { hint: didYouMean(name, KNOBS) ?? `knobs: ${KNOBS.join(", ")}` });
    }
    knobs[name] = m[2]!;
  }
  return { targets, knobs };
}

function perArch(v: string | Record<string, string> | undefined, arch: string): string | undefined {
  return typeof v === "string" ? v : v?.[arch];
}

function matches(m: KnobMatch, v: Record<string, string | undefined>): boolean {
  return Object.entries(m).every(([k, want]) => {
    const have = v[k];
    return have !== undefined && (Array.isArray(want) ? want.includes(have) : want === have);
  });
}

const DESCRIBE = ["describe", "--tags", "--always", "--dirty"];

/** ROOTFS_VERSION's default, as EVE's: git describe (with -dirty) in a git tree, else "snapshot". */
export function defaultVersion(root: string): string {
  try {
    return execFileSync("git", DESCRIBE, { cwd: root, stdio: ["ignore", "pipe", "ignore"], encoding: "utf8" }).trim() || "snapshot";
  } catch {
    return "snapshot";
  }
}

/** The same without blocking: `kiln build` starts it first, so git (its -dirty check reads the work tree) runs while the project loads. */
export function defaultVersionSoon(dir: string): Promise<string> {
  return new Promise((resolve) => {
    execFile("git", DESCRIBE, { cwd: dir, encoding: "utf8" }, (err, out) => resolve(err ? "snapshot" : out.trim() || "snapshot")).stdin?.end();
  });
}

/** The values kiln.yml's matrix allows for an arch (EVE's defaults where it says nothing): what resolveVariant checks and allVariants lists. */
function matrixOf(project: Project, arch: string): { hvs: string[]; platforms: string[]; formats: readonly string[]; flavors: string[] } {
  const cfg = project.config.variants ?? {};
  return { hvs: cfg.hv ?? [EVE_DEFAULTS.hv[arch] ?? "kvm"], platforms: cfg.platform ?? [EVE_DEFAULTS.platform], formats: cfg.formats ?? ROOTFS_FORMATS, flavors: cfg.flavor ?? [] };
}

/**
 * Knob values → a variant, checked against kiln.yml's matrix before any work:
 * unknown values and disallowed combinations are refused with the allowed values.
 */
export function resolveVariant(project: Project, knobs: Knobs): Variant {
  const cfg = project.config.variants ?? {};
  const arch = knobs.ZARCH ? archName(knobs.ZARCH) : project.archs[0]!;
  const bad = (knob: string, value: string, allowed: readonly string[], path: (string | number)[]) =>
    new KilnError("E_BAD_VARIANT", `${knob}=${value} is not one of: ${allowed.join(", ")}`, {
      hint: didYouMean(value, allowed),
      location: locate(project.file, path),
    });
  if (!(ARCHS as readonly string[]).includes(arch) || !project.archs.includes(arch)) throw bad("ZARCH", arch, project.archs, ["archs"]);
  const { hvs, platforms, formats, flavors } = matrixOf(project, arch);
  const hv = knobs.HV ?? perArch(cfg.defaults?.hv, arch) ?? EVE_DEFAULTS.hv[arch] ?? hvs[0]!;
  const platform = knobs.PLATFORM ?? perArch(cfg.defaults?.platform, arch) ?? EVE_DEFAULTS.platform;
  const format = knobs.ROOTFS_FORMAT ?? perArch(cfg.defaults?.format, arch) ?? EVE_DEFAULTS.format;
  const flavor = knobs.FLAVOR || undefined;
  if (!hvs.includes(hv)) throw bad("HV", hv, hvs, ["variants", "hv"]);
  if (!platforms.includes(platform)) throw bad("PLATFORM", platform, platforms, ["variants", "platform"]);
  if (!(formats as readonly string[]).includes(format)) throw bad("ROOTFS_FORMAT", format, formats, ["variants", "formats"]);
  if (flavor && !flavors.includes(flavor)) throw bad("FLAVOR", flavor, flavors, ["variants", "flavor"]);
  const values = { arch, hv, platform, flavor, format };
  for (const [i, rule] of (cfg.rules ?? []).entries()) {
    if (matches(rule.when, values) && !matches(rule.require, values)) {
      const knob = (k: string) => (k === "arch" ? "ZARCH" : k === "format" ? "ROOTFS_FORMAT" : k.toUpperCase());
      const need = Object.entries(rule.require).map(([k, v]) => `${knob(k)}=${Array.isArray(v) ? v.join("|") : v}`);
      const given = Object.keys(rule.when).map((k) => `${knob(k)}=${values[k as keyof typeof values]}`);
      throw new KilnError("E_BAD_VARIANT", rule.message ?? `${given.join(" ")} needs ${need.join(" ")}`, { location: locate(project.file, ["variants", "rules", i]) });
    }
  }
  const version = knobs.ROOTFS_VERSION ?? defaultVersion(project.root);
  return { arch, hv, platform, flavor, format, version, name: [hv, platform, flavor].filter(Boolean).join("-") };
}

/** A variant and every ROOTFS_FORMAT it allows; `defaultFormat` when a build without ROOTFS_FORMAT is allowed (its `format` is then that one, else the first allowed). */
export interface MatrixVariant extends Variant {
  formats: string[];
  defaultFormat?: string;
}

/**
 * Every variant the build accepts (for `kiln variants`, `kiln validate`): each
 * ZARCH × HV × PLATFORM × FLAVOR that resolveVariant allows with at least one
 * ROOTFS_FORMAT. With no `variants.hv` the HVs are EVE's defaults for the arch
 * (kvm; mini on riscv64), which is all an HV knob may then name there too.
 */
export function allVariants(project: Project): MatrixVariant[] {
  const out: MatrixVariant[] = [];
  const allowed = (k: Knobs): Variant | undefined => {
    try {
      return resolveVariant(project, k);
    } catch {
      return undefined; // not an allowed combination
    }
  };
  for (const arch of project.archs) {
    const { hvs, platforms, formats: allFormats, flavors } = matrixOf(project, arch);
    for (const hv of hvs) {
      for (const platform of platforms) {
        for (const flavor of [undefined, ...flavors]) {
          const k: Knobs = { ZARCH: arch, HV: hv, PLATFORM: platform, FLAVOR: flavor, ROOTFS_VERSION: "-" };
          const formats = allFormats.filter((f) => allowed({ ...k, ROOTFS_FORMAT: f }));
          if (!formats.length) continue;
          const byDefault = allowed(k);
          const v = byDefault ?? allowed({ ...k, ROOTFS_FORMAT: formats[0] })!;
          out.push({ ...v, formats, ...(byDefault ? { defaultFormat: byDefault.format } : {}) });
        }
      }
    }
  }
  return out;
}
