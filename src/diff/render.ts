import type { DiffResult, FieldChange } from "./types.js";

function field(name: string, c: FieldChange): string {
  if (name === "content") return "content";
  if (c.a === null) return `${name} +${c.b}`;
  if (c.b === null) return `${name} -${c.a}`;
  return `${name} ${c.a}→${c.b}`;
}

const fields = (f: Record<string, FieldChange>) => Object.entries(f).map(([k, v]) => field(k, v)).join(", ");

/** One line per difference: `+ path`, `- path`, `~ path (mode 0644→0600, content)`. */
export function renderDiff(r: DiffResult): string {
  const lines: string[] = [];
  for (const f of r.filesystem) lines.push(`~ ${f.where ? `${f.where}: ` : ""}[${r.kind === "gpt" && f.where === "gpt" ? "disk" : "file system"}] (${fields(f.fields)})`);
  for (const p of r.partitions) {
    if (p.change === "added") lines.push(`+ partition ${p.name}`);
    else if (p.change === "removed") lines.push(`- partition ${p.name}`);
    else lines.push(`~ partition ${p.name} (${fields(p.fields)})`);
  }
  const all: [string, string][] = [
    ...r.added.map((p): [string, string] => [p, `+ ${p}`]),
    ...r.removed.map((p): [string, string] => [p, `- ${p}`]),
    ...r.changed.map((c): [string, string] => [c.path, `~ ${c.path} (${fields(c.fields)})`]),
  ];
  all.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  lines.push(...all.map(([, l]) => l));
  return lines.join("\n");
}
