import type { VersionOp } from "./version.js";

/** One paragraph of a deb822 file (Packages, Release, control, *.sources): field name → value. */
export type Stanza = Record<string, string>;

/**
 * Parse deb822 text into paragraphs. Continuation lines (starting with a space
 * or tab) are joined with "\n". Field names are kept as written; `keep`
 * limits the fields stored (a Packages file is mostly descriptions).
 */
export function parseStanzas(text: string, keep?: ReadonlySet<string>): Stanza[] {
  const out: Stanza[] = [];
  let cur: Stanza = {};
  let has = false;
  let field: string | undefined;
  let start = 0;
  const len = text.length;
  while (start <= len) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = len;
    let line = text.slice(start, end);
    start = end + 1;
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (!line.trim()) {
      if (has) out.push(cur);
      cur = {};
      has = false;
      field = undefined;
      if (end === len) break;
      continue;
    }
    const c = line.charCodeAt(0);
    if (c === 32 || c === 9) {
      if (field !== undefined) cur[field] += `\n${line.slice(1)}`;
      continue;
    }
    if (c === 35) continue; // '#' comment (sources files)
    const colon = line.indexOf(":");
    if (colon <= 0) {
      field = undefined;
      continue;
    }
    const name = line.slice(0, colon);
    if (keep && !keep.has(name)) {
      field = undefined;
      continue;
    }
    field = name;
    cur[name] = line.slice(colon + 1).trim();
    has = true;
    if (end === len) break;
  }
  if (has) out.push(cur);
  return out;
}

/** One alternative of a dependency: `name[:arch] [(op version)]`. */
export interface Relation {
  name: string;
  /** Architecture qualifier: "any", "native", or an architecture name. */
  arch?: string;
  op?: VersionOp;
  version?: string;
}

const REL_RE = /^([A-Za-z0-9][A-Za-z0-9+.-]*)(?::([a-z0-9-]+))?\s*(?:\(\s*(<<|<=|>=|>>|=|<|>)\s*([^)\s]+)\s*\))?\s*(?:\[([^\]]*)\])?\s*(?:<.*>)?$/;

/**
 * Parse one alternative. Architecture restrictions (`[amd64 !arm64]`) and
 * build profiles (`<!nocheck>`) belong to source packages; a restriction that
 * excludes `arch` drops the alternative (returns null).
 */
export function parseRelation(text: string, arch?: string): Relation | null | undefined {
  const m = REL_RE.exec(text.trim());
  if (!m) return undefined;
  const [, name, qual, op, version, archList] = m;
  if (archList && arch) {
    const words = archList.trim().split(/\s+/);
    const neg = words.every((w) => w.startsWith("!"));
    const listed = words.some((w) => w.replace(/^!/, "") === arch);
    if (neg ? listed : !listed) return null;
  }
  const rel: Relation = { name: name!.toLowerCase() };
  if (qual) rel.arch = qual;
  if (op && version) {
    rel.op = op === "<" ? "<=" : op === ">" ? ">=" : (op as VersionOp);
    rel.version = version;
  }
  return rel;
}

/** A Depends-like field: comma-separated groups of `|`-separated alternatives. Unparseable items are skipped. */
export function parseRelations(field: string | undefined, arch?: string): Relation[][] {
  if (!field) return [];
  const out: Relation[][] = [];
  for (const group of field.split(",")) {
    if (!group.trim()) continue;
    const alts = group.split("|").map((a) => parseRelation(a, arch)).filter((r): r is Relation => !!r);
    if (alts.length) out.push(alts);
  }
  return out;
}

export function formatRelation(r: Relation): string {
  return `${r.name}${r.arch ? `:${r.arch}` : ""}${r.op ? ` (${r.op} ${r.version})` : ""}`;
}

export function formatGroup(g: Relation[]): string {
  return g.map(formatRelation).join(" | ");
}
