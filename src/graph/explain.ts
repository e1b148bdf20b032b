import { stableJson } from "../core/hash.js";
import type { KeyRecord } from "./inputs.js";

export interface Change {
  /** Dotted field path in the record: "files", "deps", "recipe.script", "tools.bash" … */
  field: string;
  /** For files: the path; for deps and tools: the name. */
  name?: string;
  kind: "added" | "removed" | "changed";
  before?: string;
  after?: string;
}

const show = (v: unknown) => (typeof v === "string" ? v : stableJson(v));

function diffMaps(field: string, a: Record<string, string>, b: Record<string, string>): Change[] {
  const out: Change[] = [];
  for (const name of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    if (!(name in a)) out.push({ field, name, kind: "added", after: b[name] });
    else if (!(name in b)) out.push({ field, name, kind: "removed", before: a[name] });
    else if (a[name] !== b[name]) out.push({ field, name, kind: "changed", before: a[name], after: b[name] });
  }
  return out;
}

function diffValues(field: string, a: unknown, b: unknown): Change[] {
  if (stableJson(a) === stableJson(b)) return [];
  const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].sort().flatMap((k) => diffValues(`${field}.${k}`, a[k], b[k]));
  }
  const kind = a === undefined ? "added" : b === undefined ? "removed" : "changed";
  return [{ field, kind, before: a === undefined ? undefined : show(a), after: b === undefined ? undefined : show(b) }];
}

/** What differs between the record of the last build and the record now, field by field. */
export function diffRecords(before: KeyRecord, after: KeyRecord): Change[] {
  return [
    ...diffValues("format", before.format, after.format),
    ...diffValues("kind", before.kind, after.kind),
    ...diffValues("arch", before.arch, after.arch),
    ...diffMaps("files", before.files, after.files),
    ...diffMaps("sources", before.sources, after.sources),
    ...diffMaps("deps", before.deps, after.deps),
    ...diffValues("recipe", before.recipe, after.recipe),
    ...diffValues("knobs", before.knobs, after.knobs),
    ...diffMaps("tools", before.tools, after.tools),
  ];
}

export function describeChange(c: Change): string {
  const what =
    c.field === "files" ? `file ${c.name}` : c.field === "deps" ? `dependency ${c.name}` : c.field === "sources" ? `source ${c.name}` : c.field === "tools" ? `tool ${c.name}` : c.field;
  if (c.kind === "added") return `${what} added${c.after && c.field !== "files" ? `: ${short(c.after)}` : ""}`;
  if (c.kind === "removed") return `${what} removed`;
  return `${what} changed: ${short(c.before)} → ${short(c.after)}`;
}

function short(v?: string): string {
  if (!v) return "";
  const s = v.replace(/sha256:([0-9a-f]{12})[0-9a-f]{52}/g, "sha256:$1…").replace(/^([0-9a-f]{12})[0-9a-f]{52}$/, "$1…");
  return s.length > 80 ? `${s.slice(0, 77)}…` : s;
}
