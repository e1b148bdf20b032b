import { open } from "node:fs/promises";

export interface Partition {
  index: number;
  name: string;
  type: string;
  guid: string;
  attributes: string;
  /** Bytes. */
  start: number;
  size: number;
}

export interface Disk {
  guid: string;
  sectors: number;
  partitions: Partition[];
}

/** Mixed-endian GUID bytes → text. */
function guidText(b: Buffer): string {
  const h = (x: Buffer) => x.toString("hex");
  const le = (x: Buffer) => h(Buffer.from(x).reverse());
  return `${le(b.subarray(0, 4))}-${le(b.subarray(4, 6))}-${le(b.subarray(6, 8))}-${h(b.subarray(8, 10))}-${h(b.subarray(10, 16))}`.toUpperCase();
}

/** Read the primary GPT of a raw disk (512-byte sectors). */
export async function readGpt(path: string): Promise<Disk> {
  const fh = await open(path, "r");
  try {
    const hdr = Buffer.alloc(512);
    await fh.read(hdr, 0, 512, 512);
    if (hdr.toString("latin1", 0, 8) !== "EFI PART") throw new Error(`${path}: no GPT header`);
    const entriesLba = Number(hdr.readBigUInt64LE(72));
    const count = hdr.readUInt32LE(80);
    const size = hdr.readUInt32LE(84);
    const table = Buffer.alloc(count * size);
    await fh.read(table, 0, table.length, entriesLba * 512);
    const partitions: Partition[] = [];
    for (let i = 0; i < count; i++) {
      const e = table.subarray(i * size, (i + 1) * size);
      if (e.subarray(0, 16).every((x) => x === 0)) continue;
      const first = Number(e.readBigUInt64LE(32));
      const last = Number(e.readBigUInt64LE(40));
      partitions.push({
        index: i + 1,
        type: guidText(e.subarray(0, 16)),
        guid: guidText(e.subarray(16, 32)),
        start: first * 512,
        size: (last - first + 1) * 512,
        attributes: e.readBigUInt64LE(48).toString(16).padStart(16, "0"),
        name: e.toString("utf16le", 56, 128).replace(/\0.*$/s, ""),
      });
    }
    return { guid: guidText(hdr.subarray(56, 72)), sectors: Math.floor((await fh.stat()).size / 512), partitions };
  } finally {
    await fh.close();
  }
}
