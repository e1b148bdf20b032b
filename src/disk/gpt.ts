/**
 * A GPT (UEFI spec, chapter 5) writer. Written by hand rather than calling
 * sgdisk/sfdisk: those sync the whole machine and sleep after every call
 * (about a second for five partitions here), and `sgdisk -q` can exit 0 having
 * written nothing; the format itself is small and fully specified. Tests check
 * the result with `sgdisk -v` and `sgdisk -p/-i`.
 */

import { crc32 } from "../core/crc.js";

export { crc32 };

export const SECTOR = 512;
const ENTRY_SIZE = 128;
const ENTRIES = 128;
/** Sectors the entry array takes (128 × 128 bytes). */
export const ENTRY_SECTORS = (ENTRY_SIZE * ENTRIES) / SECTOR;

export interface GptPartition {
  /** Type GUID, e.g. C12A7328-F81F-11D2-BA4B-00A0C93EC93B. */
  type: string;
  guid: string;
  name: string;
  firstLba: bigint;
  /** Inclusive. */
  lastLba: bigint;
  attributes: bigint;
}

export interface GptDisk {
  sectors: bigint;
  guid: string;
  partitions: GptPartition[];
}

/** GUIDs are stored mixed-endian: the first three fields little-endian, the rest as written. */
export function guidBytes(guid: string): Buffer {
  const hex = guid.replace(/-/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a GUID: ${guid}`);
  const b = Buffer.from(hex, "hex");
  const out = Buffer.alloc(16);
  out.writeUInt32LE(b.readUInt32BE(0), 0);
  out.writeUInt16LE(b.readUInt16BE(4), 4);
  out.writeUInt16LE(b.readUInt16BE(6), 6);
  b.copy(out, 8, 8, 16);
  return out;
}

function entryArray(parts: GptPartition[]): Buffer {
  const buf = Buffer.alloc(ENTRY_SIZE * ENTRIES);
  parts.forEach((p, i) => {
    const o = i * ENTRY_SIZE;
    guidBytes(p.type).copy(buf, o);
    guidBytes(p.guid).copy(buf, o + 16);
    buf.writeBigUInt64LE(p.firstLba, o + 32);
    buf.writeBigUInt64LE(p.lastLba, o + 40);
    buf.writeBigUInt64LE(p.attributes, o + 48);
    const name = Buffer.from(p.name.slice(0, 36), "utf16le");
    name.copy(buf, o + 56);
  });
  return buf;
}

function header(disk: GptDisk, current: bigint, backup: bigint, entriesLba: bigint, entriesCrc: number): Buffer {
  const h = Buffer.alloc(SECTOR);
  h.write("EFI PART", 0, "ascii");
  h.writeUInt32LE(0x00010000, 8);
  h.writeUInt32LE(92, 12);
  h.writeBigUInt64LE(current, 24);
  h.writeBigUInt64LE(backup, 32);
  h.writeBigUInt64LE(2n + BigInt(ENTRY_SECTORS), 40); // first usable
  h.writeBigUInt64LE(disk.sectors - 2n - BigInt(ENTRY_SECTORS), 48); // last usable
  guidBytes(disk.guid).copy(h, 56);
  h.writeBigUInt64LE(entriesLba, 72);
  h.writeUInt32LE(ENTRIES, 80);
  h.writeUInt32LE(ENTRY_SIZE, 84);
  h.writeUInt32LE(entriesCrc, 88);
  h.writeUInt32LE(crc32(h.subarray(0, 92)), 16);
  return h;
}

function protectiveMbr(sectors: bigint): Buffer {
  const m = Buffer.alloc(SECTOR);
  const e = 446;
  m[e] = 0x00;
  m.writeUIntBE(0x000200, e + 1, 3);
  m[e + 4] = 0xee;
  m.writeUIntBE(0xffffff, e + 5, 3);
  m.writeUInt32LE(1, e + 8);
  const size = sectors - 1n > 0xffffffffn ? 0xffffffff : Number(sectors - 1n);
  m.writeUInt32LE(size, e + 12);
  m[510] = 0x55;
  m[511] = 0xaa;
  return m;
}

/** The bytes to write and where: protective MBR, primary header and entries, backup entries and header. */
export function gptWrites(disk: GptDisk): { offset: number; data: Buffer }[] {
  if (disk.partitions.length > ENTRIES) throw new Error("too many partitions");
  const entries = entryArray(disk.partitions);
  const ecrc = crc32(entries);
  const last = disk.sectors - 1n;
  const backupEntries = last - BigInt(ENTRY_SECTORS);
  const at = (lba: bigint) => Number(lba) * SECTOR;
  return [
    { offset: 0, data: protectiveMbr(disk.sectors) },
    { offset: at(1n), data: header(disk, 1n, last, 2n, ecrc) },
    { offset: at(2n), data: entries },
    { offset: at(backupEntries), data: entries },
    { offset: at(last), data: header(disk, last, 1n, backupEntries, ecrc) },
  ];
}

/** A GUID derived from bytes (sha256 → RFC 4122 version 4 layout), so equal inputs give equal GUIDs. */
export function derivedGuid(hexDigest: string): string {
  const b = Buffer.from(hexDigest.slice(0, 32), "hex");
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString("hex").toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
