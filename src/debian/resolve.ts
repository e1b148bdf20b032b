import { KilnError } from "../core/errors.js";
import { closest } from "../config/suggest.js";
import { formatGroup, formatRelation, parseRelation, parseRelations, type Relation, type Stanza } from "./control.js";
import { compareVersions, satisfiesVersion } from "./version.js";

/** One binary package of the index, with the fields resolution and locking need. */
export interface DebPackage {
  name: string;
  version: string;
  /** The package's architecture: the target's, or "all". */
  architecture: string;
  multiArch: "no" | "same" | "foreign" | "allowed";
  essential: boolean;
  priority: string;
  depends: Relation[][];
  preDepends: Relation[][];
  conflicts: Relation[];
  breaks: Relation[];
  provides: Relation[];
  filename: string;
  size: number;
  sha256: string;
}

/** The fields of a Packages stanza that are read (the rest, mostly descriptions, is dropped while parsing). */
export const INDEX_FIELDS: ReadonlySet<string> = new Set(["Package", "Version", "Architecture", "Multi-Arch", "Essential", "Priority", "Depends", "Pre-Depends", "Conflicts", "Breaks", "Provides", "Filename", "Size", "SHA256"]);

/** A package of a parsed index; relation fields are parsed on first use (most of an index is never looked at). */
class IndexPackage implements DebPackage {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  readonly multiArch: DebPackage["multiArch"];
  readonly essential: boolean;
  readonly priority: string;
  readonly filename: string;
  readonly size: number;
  readonly sha256: string;
  private cache: { depends?: Relation[][]; preDepends?: Relation[][]; conflicts?: Relation[]; breaks?: Relation[]; provides?: Relation[] } = {};

  constructor(
    private readonly s: Stanza,
    private readonly arch: string,
  ) {
    const ma = s["Multi-Arch"];
    this.name = s.Package!;
    this.version = s.Version!;
    this.architecture = s.Architecture ?? arch;
    this.multiArch = ma === "same" || ma === "foreign" || ma === "allowed" ? ma : "no";
    this.essential = s.Essential === "yes";
    this.priority = s.Priority ?? "optional";
    this.filename = s.Filename ?? "";
    this.size = Number(s.Size ?? 0);
    this.sha256 = s.SHA256 ?? "";
  }

  get depends() {
    return (this.cache.depends ??= parseRelations(this.s.Depends, this.arch));
  }
  get preDepends() {
    return (this.cache.preDepends ??= parseRelations(this.s["Pre-Depends"], this.arch));
  }
  get conflicts() {
    return (this.cache.conflicts ??= parseRelations(this.s.Conflicts, this.arch).flat());
  }
  get breaks() {
    return (this.cache.breaks ??= parseRelations(this.s.Breaks, this.arch).flat());
  }
  get provides() {
    return (this.cache.provides ??= parseRelations(this.s.Provides, this.arch).flat());
  }
}

export function packageFromStanza(s: Stanza, arch: string): DebPackage | undefined {
  if (!s.Package || !s.Version) return undefined;
  return new IndexPackage(s, arch);
}

const PRIORITY_RANK: Record<string, number> = { required: 0, important: 1, standard: 2, optional: 3, extra: 4 };

/** All packages of one architecture (its own and "all"), by name and by what they provide. */
export class Universe {
  readonly byName = new Map<string, DebPackage[]>();
  readonly providers = new Map<string, { pkg: DebPackage; version?: string }[]>();

  /** `where` names the index in messages, e.g. "bookworm main (amd64)". */
  constructor(
    readonly arch: string,
    packages: Iterable<DebPackage>,
    readonly where = `the index (${arch})`,
  ) {
    for (const p of packages) {
      if (p.architecture !== arch && p.architecture !== "all") continue;
      const list = this.byName.get(p.name) ?? [];
      // The same name and version twice (two components): the first one read wins.
      if (!list.some((q) => q.version === p.version)) list.push(p);
      this.byName.set(p.name, list);
      for (const pr of p.provides) {
        const l = this.providers.get(pr.name) ?? [];
        l.push({ pkg: p, version: pr.op === "=" ? pr.version : undefined });
        this.providers.set(pr.name, l);
      }
    }
    // Newest first; ties (impossible in one index) by file name for determinism.
    for (const list of this.byName.values()) list.sort((a, b) => compareVersions(b.version, a.version) || (a.filename < b.filename ? -1 : 1));
  }

  static fromStanzas(arch: string, stanzas: Iterable<Stanza>, where?: string): Universe {
    const pkgs: DebPackage[] = [];
    for (const s of stanzas) {
      const p = packageFromStanza(s, arch);
      if (p) pkgs.push(p);
    }
    return new Universe(arch, pkgs, where);
  }
}

export interface ResolveRequest {
  packages: string[];
  exclude?: string[];
  essential?: boolean;
}

/** Why a package is in the closure: the package (or request) that pulled it in and the relation it satisfies. */
export interface Reason {
  parent?: string;
  relation: string;
}

export interface Resolution {
  /** Install order: dependencies before dependents, ties by name (cycles broken deterministically). */
  packages: DebPackage[];
  reasons: Map<string, Reason>;
  /** Dependencies dropped because they name an excluded package. */
  skipped: string[];
}

/** dpkg's deparchsatisfied() for an index of one architecture (native plus "all"). */
function archSatisfies(p: DebPackage, rel: Relation, native: string, conflictLike = false): boolean {
  if (p.multiArch === "foreign") return true;
  if (rel.arch === "any") return p.multiArch === "allowed" || conflictLike;
  const want = rel.arch === undefined || rel.arch === "native" || rel.arch === "all" ? native : rel.arch;
  const have = p.architecture === "all" ? native : p.architecture;
  return want === have;
}

function versionOk(version: string | undefined, rel: Relation): boolean {
  if (!rel.op) return true;
  if (version === undefined) return false;
  return satisfiesVersion(version, rel.op, rel.version!);
}

/** Does package `p` satisfy `rel`, as itself or through its Provides? */
function satisfiedBy(p: DebPackage, rel: Relation, native: string, conflictLike = false): boolean {
  if (!archSatisfies(p, rel, native, conflictLike)) return false;
  if (p.name === rel.name && versionOk(p.version, rel)) return true;
  return p.provides.some((pr) => pr.name === rel.name && versionOk(pr.op === "=" ? pr.version : undefined, rel));
}

/** Does a or b declare Conflicts/Breaks that the other matches? A package never conflicts with itself. */
function clash(a: DebPackage, b: DebPackage, native: string): Relation | undefined {
  if (a.name === b.name) return undefined;
  for (const r of [...a.conflicts, ...a.breaks]) if (satisfiedBy(b, r, native, true)) return r;
  return undefined;
}

const pkgLabel = (p: DebPackage) => `${p.name} ${p.version}`;

/**
 * Resolve the closure of Depends and Pre-Depends, as apt would for a fresh
 * system: for each dependency, a package already chosen that satisfies any
 * alternative wins; otherwise the first alternative that can be satisfied,
 * by the real package of that name (newest fitting version) before
 * providers of a virtual package (by Priority, then name). Packages that
 * conflict with the chosen set are not candidates. There is no backtracking:
 * what cannot be satisfied is an error that shows the chain from the request.
 */
export function resolve(u: Universe, req: ResolveRequest): Resolution {
  const native = u.arch;
  const exclude = new Set(req.exclude ?? []);
  const chosen = new Map<string, DebPackage>();
  const reasons = new Map<string, Reason>();
  const skipped: string[] = [];
  const queue: DebPackage[] = [];

  const chain = (name?: string): string[] => {
    const out: string[] = [];
    const seen = new Set<string>();
    for (let n = name; n !== undefined && !seen.has(n); n = reasons.get(n)?.parent) {
      seen.add(n);
      out.unshift(n);
    }
    return out;
  };
  const isChosenSatisfying = (rel: Relation) => [...chosen.values()].find((p) => satisfiedBy(p, rel, native));
  /** Why candidate `c` cannot join the chosen set, or undefined when it can. */
  const clashWithChosen = (c: DebPackage): string | undefined => {
    for (const p of chosen.values()) {
      const r = clash(c, p, native);
      if (r) return `${pkgLabel(c)} declares ${c.conflicts.includes(r) ? "Conflicts" : "Breaks"}: ${formatRelation(r)}, and ${pkgLabel(p)} is chosen (via ${chain(p.name).join(" → ")})`;
      const r2 = clash(p, c, native);
      if (r2) return `${pkgLabel(p)} (chosen via ${chain(p.name).join(" → ")}) declares ${p.conflicts.includes(r2) ? "Conflicts" : "Breaks"}: ${formatRelation(r2)}`;
    }
    return undefined;
  };

  /** The best candidate for one alternative, or a reason why there is none. */
  const candidate = (rel: Relation): { pkg?: DebPackage; why: string } => {
    const real = u.byName.get(rel.name) ?? [];
    const blocked: string[] = [];
    const already = chosen.get(rel.name);
    if (already) return { why: `${pkgLabel(already)} is already chosen (via ${chain(already.name).join(" → ")}) and does not satisfy it` };
    const fitsVersion = real.filter((p) => versionOk(p.version, rel));
    const fits = fitsVersion.filter((p) => archSatisfies(p, rel, native));
    for (const p of fits) {
      const c = clashWithChosen(p);
      if (!c) return { pkg: p, why: "" };
      blocked.push(c);
    }
    const provs = (u.providers.get(rel.name) ?? [])
      .filter((x) => !exclude.has(x.pkg.name) && versionOk(x.version, rel) && archSatisfies(x.pkg, rel, native))
      .sort((a, b) => (PRIORITY_RANK[a.pkg.priority] ?? 5) - (PRIORITY_RANK[b.pkg.priority] ?? 5) || (a.pkg.name < b.pkg.name ? -1 : a.pkg.name > b.pkg.name ? 1 : compareVersions(b.pkg.version, a.pkg.version)));
    for (const x of provs) {
      const other = chosen.get(x.pkg.name);
      if (other && other.version !== x.pkg.version) continue;
      const c = clashWithChosen(x.pkg);
      if (!c) return { pkg: x.pkg, why: "" };
      blocked.push(c);
    }
    if (blocked.length) return { why: blocked.join("; ") };
    if (real.length && !fitsVersion.length) return { why: `no version satisfies; ${u.where} has ${real.map((p) => p.version).join(", ")}` };
    if (real.length && !fits.length) {
      return { why: `${rel.arch === "any" ? `':any' needs Multi-Arch: allowed, but ${rel.name} is Multi-Arch: ${real[0]!.multiArch}` : `no ${rel.arch ?? native} package (found ${[...new Set(real.map((p) => p.architecture))].join(", ")})`}` };
    }
    const allProv = u.providers.get(rel.name) ?? [];
    if (allProv.length) {
      const names = [...new Set(allProv.map((x) => `${x.pkg.name}${x.version ? ` (provides ${x.version})` : ""}`))].sort();
      const excl = allProv.filter((x) => exclude.has(x.pkg.name)).map((x) => x.pkg.name);
      return { why: `a virtual package; no provider fits (${rel.op ? "versioned dependencies need a versioned Provides; " : ""}providers: ${names.join(", ")}${excl.length ? `; excluded: ${excl.join(", ")}` : ""})` };
    }
    const near = closest(rel.name, u.byName.keys());
    return { why: `not in ${u.where}${near ? `; did you mean '${near}'?` : ""}` };
  };

  const choose = (p: DebPackage, reason: Reason) => {
    chosen.set(p.name, p);
    reasons.set(p.name, reason);
    queue.push(p);
  };

  const fail = (parent: string | undefined, group: Relation[], whys: string[]): never => {
    const path = [...chain(parent), formatGroup(group)].join(" → ");
    const details = group.length > 1 ? group.map((r, i) => `${formatRelation(r)}: ${whys[i]}`) : [];
    throw new KilnError("E_DEBIAN_RESOLVE", `${path}: ${group.length > 1 ? "no alternative can be installed" : whys[0]}`, {
      details,
      hint: "change the package list or its version constraint, add a package to exclude, or pick another suite",
    });
  };

  const satisfy = (group: Relation[], parent: string | undefined, text: string) => {
    if (group.some((r) => isChosenSatisfying(r))) return;
    // Excluding a name drops every dependency that names it, alternatives and all: `exclude:
    // [initramfs-tools]` means no initramfs tool, not another one. (Ask for the other one by name.)
    if (group.some((r) => exclude.has(r.name))) {
      skipped.push(`${parent ?? "request"} → ${text} (excluded)`);
      return;
    }
    const alts = group;
    const whys: string[] = [];
    for (const r of alts) {
      const c = candidate(r);
      if (c.pkg) {
        choose(c.pkg, { parent, relation: text });
        return;
      }
      whys.push(c.why);
    }
    fail(parent, alts, whys);
  };

  for (const text of req.packages) {
    const rel = parseRelation(text);
    if (!rel) throw new KilnError("E_BAD_VALUE", `'${text}' is not a Debian package name with an optional version constraint`);
    if (exclude.has(rel.name)) throw new KilnError("E_BAD_VALUE", `'${rel.name}' is both requested and excluded`);
    satisfy([rel], undefined, text);
  }
  if (req.essential) {
    const names = [...u.byName.entries()].filter(([, l]) => l[0]!.essential).map(([n]) => n).sort();
    for (const n of names) if (!exclude.has(n)) satisfy([{ name: n }], undefined, `${n} (Essential: yes)`);
  }
  while (queue.length) {
    const p = queue.shift()!;
    for (const group of [...p.preDepends, ...p.depends]) satisfy(group, p.name, formatGroup(group));
  }
  // Every pair once more: a package chosen early may be broken by a later choice's Breaks.
  const list = [...chosen.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const a of list) {
    for (const b of list) {
      const r = clash(a, b, native);
      if (r) {
        throw new KilnError("E_DEBIAN_RESOLVE", `${pkgLabel(a)} (${chain(a.name).join(" → ")}) conflicts with ${pkgLabel(b)} (${chain(b.name).join(" → ")}): ${a.conflicts.includes(r) ? "Conflicts" : "Breaks"}: ${formatRelation(r)}`, {
          hint: "exclude one of them, or ask for an alternative that does not conflict",
        });
      }
    }
  }
  return { packages: installOrder(chosen, native), reasons, skipped };
}

/** Dependencies before dependents (depth first from names in order), so later packages overwrite earlier ones as dpkg would. */
function installOrder(chosen: Map<string, DebPackage>, native: string): DebPackage[] {
  const out: DebPackage[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (p: DebPackage) => {
    if (state.has(p.name)) return;
    state.set(p.name, "visiting");
    const deps = new Set<DebPackage>();
    for (const group of [...p.preDepends, ...p.depends]) {
      for (const r of group) {
        const q = [...chosen.values()].find((c) => satisfiedBy(c, r, native));
        if (q) {
          deps.add(q);
          break;
        }
      }
    }
    for (const q of [...deps].sort((a, b) => (a.name < b.name ? -1 : 1))) visit(q);
    state.set(p.name, "done");
    out.push(p);
  };
  for (const n of [...chosen.keys()].sort()) visit(chosen.get(n)!);
  return out;
}
