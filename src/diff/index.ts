import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../core/exec.js";
import { KilnError } from "../core/errors.js";
import { diffTrees } from "./compare.js";
import { detect, type Format } from "./detect.js";
import { EVE_IGNORE } from "./eve.js";
import { openExt4 } from "./ext4.js";
import { openFat } from "./fat.js";
import { readGpt, type Partition } from "./gpt.js";
import { ignorer } from "./paths.js";
import { Scratch } from "./scratch.js";
import { openSquashfs } from "./squashfs.js";
import { openTar } from "./tar.js";
import { emptyResult, type DiffOptions, type DiffResult, type FieldChange, type Tree } from "./types.js";

export type { DiffOptions, DiffResult } from "./types.js";

const FS: Format[] = ["tar", "squashfs", "ext4", "fat"];

/** kiln's layout names for EVE's partition labels, so paths read "imga:/etc/hv". */
const LAYOUT_NAMES: Record<string, string> = { "EFI System": "efi", IMGA: "imga", IMGB: "imgb", CONFIG: "conf", P3: "persist" };

async function openTree(path: string, format: Format, offset: number, scratch: Scratch): Promise<Tree> {
  switch (format) {
    case "tar":
      return openTar(path);
    case "squashfs":
      return openSquashfs(path, offset, scratch);
    case "ext4":
      return openExt4(path, offset, scratch);
    case "fat":
      return openFat(path, offset, scratch);
    default:
      throw new KilnError("E_DIFF_INPUT", `${path}: cannot read a ${format} file system`);
  }
}

async function hashRange(path: string, start: number, size: number): Promise<string> {
  const h = createHash("sha256");
  if (size > 0) for await (const chunk of createReadStream(path, { start, end: start + size - 1 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

function partitionNames(parts: Partition[]): Map<string, Partition> {
  const out = new Map<string, Partition>();
  for (const p of parts) {
    let name = LAYOUT_NAMES[p.name] ?? (p.name.toLowerCase().replace(/\s+/g, "-") || `p${p.index}`);
    if (out.has(name)) name = `${name}#${p.index}`;
    out.set(name, p);
  }
  return out;
}

async function diffDisks(a: string, b: string, opts: DiffOptions, ignored: (p: string) => boolean, scratch: Scratch): Promise<DiffResult> {
  const res = emptyResult("gpt");
  const [da, db] = await Promise.all([readGpt(a), readGpt(b)]);
  const disk: Record<string, FieldChange> = {};
  if (da.guid !== db.guid) disk.guid = { a: da.guid, b: db.guid };
  if (da.sectors !== db.sectors) disk.size = { a: da.sectors * 512, b: db.sectors * 512 };
  if (Object.keys(disk).length) res.filesystem.push({ where: "gpt", fields: disk });
  const pa = partitionNames(da.partitions);
  const pb = partitionNames(db.partitions);
  for (const name of [...new Set([...pa.keys(), ...pb.keys()])]) {
    const x = pa.get(name);
    const y = pb.get(name);
    if (!x || !y) {
      const p = (x ?? y)!;
      res.partitions.push({ name, change: x ? "removed" : "added", fields: { index: { a: x ? p.index : null, b: y ? p.index : null } } });
      continue;
    }
    const fields: Record<string, FieldChange> = {};
    for (const k of ["index", "name", "type", "guid", "attributes", "start", "size"] as const) {
      if (x[k] !== y[k]) fields[k] = { a: x[k], b: y[k] };
    }
    const [ha, hb] = await Promise.all([hashRange(a, x.start, x.size), hashRange(b, y.start, y.size)]);
    if (ha !== hb) {
      const [fa, fb] = await Promise.all([detect(a, x.start), detect(b, y.start)]);
      if (FS.includes(fa) && FS.includes(fb)) {
        const [ta, tb] = await Promise.all([openTree(a, fa, x.start, scratch), openTree(b, fb, y.start, scratch)]);
        await diffTrees(ta, tb, opts, ignored, res, `${name}:`);
      } else fields.content = { a: `sha256:${ha}`, b: `sha256:${hb}` };
    }
    if (Object.keys(fields).length) res.partitions.push({ name, change: "changed", fields });
  }
  return res;
}

async function readable(path: string): Promise<number> {
  const st = await stat(path).catch(() => null);
  if (!st?.isFile()) throw new KilnError("E_DIFF_INPUT", `${path}: no such file`);
  return st.size;
}

/** Compare two images: rootfs.tar, rootfs.img (squashfs, ext4), FAT images, raw GPT or qcow2 disks. */
export async function diffImages(pathA: string, pathB: string, opts: DiffOptions): Promise<DiffResult> {
  await Promise.all([readable(pathA), readable(pathB)]);
  const scratch = new Scratch();
  try {
    const ignored = ignorer([...opts.ignore, ...(opts.preset === "eve" ? EVE_IGNORE : [])]);
    let [a, b] = [pathA, pathB];
    let [fa, fb] = await Promise.all([detect(a), detect(b)]);
    const toRaw = async (p: string, i: number) => {
      const out = join(await scratch.dir("raw"), `disk${i}.raw`);
      await run("qemu-img", ["convert", "-O", "raw", p, out]);
      return out;
    };
    if (fa === "qcow2") [a, fa] = [await toRaw(a, 1), "gpt"];
    if (fb === "qcow2") [b, fb] = [await toRaw(b, 2), "gpt"];
    if (fa === "gpt" || fb === "gpt") {
      if (fa !== fb) throw new KilnError("E_DIFF_INPUT", `cannot compare a disk with a file system: ${pathA} is ${fa}, ${pathB} is ${fb}`);
      return await diffDisks(a, b, opts, ignored, scratch);
    }
    for (const [p, f] of [[pathA, fa], [pathB, fb]] as const) {
      if (!FS.includes(f)) throw new KilnError("E_DIFF_INPUT", `${p}: not a tar, squashfs, ext4, FAT or GPT disk image (${f === "erofs" ? "erofs is not supported" : "unknown magic"})`);
    }
    const [ta, tb] = await Promise.all([openTree(a, fa, 0, scratch), openTree(b, fb, 0, scratch)]);
    const res = emptyResult(fa === fb ? fa : `${fa}/${fb}`);
    await diffTrees(ta, tb, opts, ignored, res);
    return res;
  } finally {
    await scratch.dispose();
  }
}

/** True when the result holds any difference. */
export function differs(r: DiffResult): boolean {
  return r.added.length + r.removed.length + r.changed.length + r.partitions.length + r.filesystem.length > 0;
}
