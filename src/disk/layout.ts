import type { PartitionConfig } from "../config/schema.js";
import { KilnError } from "../core/errors.js";

export const MiB = 1024 * 1024;

/** Type GUID aliases. eve-rootfs is the CoreOS /usr type EVE uses for its gptprio A/B slots. */
export const PART_TYPES: Record<string, string> = {
  efi: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
  "eve-rootfs": "5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6",
  "eve-conf": "13307E62-CD9C-4920-8F9B-91B45828B798",
  "eve-persist": "5F24425A-2DFA-11E8-A270-7B663FACCC2C",
  "basic-data": "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
  linux: "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
};

/** EVE's live.raw (docs/BUILD.md): efi, imga, imgb, conf, persist. imga is the active slot. */
export const EVE_LIVE: PartitionConfig[] = [
  { name: "efi", label: "EFI System", type: "efi", size: "36M", contents: "efi" },
  { name: "imga", label: "IMGA", type: "eve-rootfs", contents: "rootfs", gptprio: { priority: 2, tries: 0, successful: true } },
  { name: "imgb", label: "IMGB", type: "eve-rootfs", contents: "rootfs", gptprio: { priority: 0, tries: 0, successful: false } },
  { name: "conf", label: "CONFIG", type: "eve-conf", contents: "config" },
  { name: "persist", label: "P3", type: "eve-persist", size: "8M", contents: "persist" },
];

/** EVE's installer.raw: efi, imga (the installer rootfs), conf_win (a Windows basic data partition). */
export const EVE_INSTALLER: PartitionConfig[] = [
  { name: "efi", label: "EFI System", type: "efi", size: "36M", contents: "efi" },
  { name: "imga", label: "IMGA", type: "eve-rootfs", contents: "rootfs", gptprio: { priority: 2, tries: 0, successful: true } },
  { name: "conf_win", label: "CONFIG", type: "basic-data", contents: "config" },
];

export interface Partition {
  name: string;
  label: string;
  type: string;
  contents: PartitionConfig["contents"];
  /** Bytes. */
  start: number;
  size: number;
  guid?: string;
  attributes: bigint;
}

function parseSize(v: string | number): number {
  if (typeof v === "number") return v * MiB;
  const m = /^(\d+)(K|M|G)/.exec(v)!;
  return Number(m[1]) * { K: 1024, M: MiB, G: 1024 * MiB }[m[2] as "K" | "M" | "G"];
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

export function attributesOf(p: PartitionConfig): bigint {
  let a = 0n;
  for (const bit of p.attributes ?? []) a |= 1n << BigInt(bit);
  if (p.gptprio) {
    a |= BigInt(p.gptprio.priority & 15) << 48n;
    a |= BigInt((p.gptprio.tries ?? 0) & 15) << 52n;
    if (p.gptprio.successful) a |= 1n << 56n;
  }
  return a;
}

/**
 * Place a layout: sizes from the content ("fit", 1 MiB aligned) or given,
 * starts 1 MiB aligned after each other unless given. Overlaps, unknown
 * types, content larger than its partition and duplicate names are E_LAYOUT.
 */
export function placeLayout(layout: PartitionConfig[], contentSize: (p: PartitionConfig) => number, where: string): { parts: Partition[]; diskSize: number } {
  const problems: string[] = [];
  const names = new Set<string>();
  let cursor = MiB;
  const parts: Partition[] = [];
  for (const p of layout) {
    if (names.has(p.name)) problems.push(`partition '${p.name}' appears twice`);
    names.add(p.name);
    const type = PART_TYPES[p.type] ?? (/^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$/.test(p.type) ? p.type.toUpperCase() : undefined);
    if (!type) problems.push(`partition '${p.name}' has unknown type '${p.type}' (a GUID, or one of: ${Object.keys(PART_TYPES).join(", ")})`);
    const need = contentSize(p);
    const size = p.size === undefined || p.size === "fit" ? Math.max(MiB, alignUp(need, MiB)) : parseSize(p.size);
    if (need > size) problems.push(`partition '${p.name}' is ${size / MiB} MiB but its content needs ${(need / MiB).toFixed(1)} MiB`);
    const start = p.start === undefined ? cursor : parseSize(p.start);
    if (start % 512) problems.push(`partition '${p.name}' does not start on a sector boundary`);
    if (start < MiB) problems.push(`partition '${p.name}' starts inside the partition table (before 1 MiB)`);
    for (const q of parts) {
      if (start < q.start + q.size && q.start < start + size) problems.push(`partitions '${q.name}' and '${p.name}' overlap`);
    }
    parts.push({ name: p.name, label: p.label ?? p.name.toUpperCase(), type: type ?? "", contents: p.contents, start, size, guid: p.guid, attributes: attributesOf(p) });
    cursor = alignUp(start + size, MiB);
  }
  if (problems.length) throw new KilnError("E_LAYOUT", `the ${where} layout is invalid: ${problems.join("; ")}`, { details: problems });
  const end = Math.max(...parts.map((p) => p.start + p.size));
  return { parts, diskSize: alignUp(end, MiB) + MiB };
}
