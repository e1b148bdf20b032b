import { open } from "node:fs/promises";
import { crc32c } from "../core/crc.js";
import { sha256Hex } from "../core/hash.js";
import { derivedGuid, guidBytes } from "../disk/gpt.js";

/**
 * qemu-img writes random UUIDs into VDI and VHDX files, so two conversions of
 * one raw disk differ. These fix-ups replace them with values derived from the
 * raw disk's digest. Offsets are from the formats' specifications (VirtualBox
 * VDI header; Microsoft's VHDX spec 1.0), checked against qemu-img's output.
 */

/** VDI: the image and modification UUIDs at 0x188 and 0x198. */
export async function fixVdi(file: string, seed: string): Promise<void> {
  const fh = await open(file, "r+");
  try {
    await fh.write(guidBytes(derivedGuid(sha256Hex(`${seed}:vdi:create`))), 0, 16, 0x188);
    await fh.write(guidBytes(derivedGuid(sha256Hex(`${seed}:vdi:modify`))), 0, 16, 0x198);
  } finally {
    await fh.close();
  }
}

const KiB64 = 64 * 1024;

/**
 * VHDX: both headers get fixed sequence numbers and derived File/Data write
 * GUIDs, and a zero LogGuid (an empty log, so the log region, also zeroed, is
 * never replayed); their CRC-32C is recomputed. The metadata's Page83 virtual
 * disk id is replaced too.
 */
export async function fixVhdx(file: string, seed: string): Promise<void> {
  const fh = await open(file, "r+");
  try {
    for (const [i, off] of [KiB64, 2 * KiB64].entries()) {
      const h = Buffer.alloc(4096);
      await fh.read(h, 0, 4096, off);
      if (h.toString("ascii", 0, 4) !== "head") throw new Error(`not a VHDX header at ${off}`);
      h.writeBigUInt64LE(BigInt(i + 1), 8);
      guidBytes(derivedGuid(sha256Hex(`${seed}:vhdx:file`))).copy(h, 16);
      guidBytes(derivedGuid(sha256Hex(`${seed}:vhdx:data`))).copy(h, 32);
      h.fill(0, 48, 64);
      h.writeUInt32LE(0, 4);
      h.writeUInt32LE(crc32c(h), 4);
      await fh.write(h, 0, 4096, off);
    }
    // Region table (at 192 KiB) → log region: zero it, as the empty log says.
    const rt = Buffer.alloc(KiB64);
    await fh.read(rt, 0, KiB64, 3 * KiB64);
    const entries = rt.readUInt32LE(8);
    const META = guidBytes("8B7CA206-4790-4B9A-B8FE-575F050F886E");
    for (let e = 0; e < entries; e++) {
      const o = 16 + e * 32;
      const off = Number(rt.readBigUInt64LE(o + 16));
      if (rt.subarray(o, o + 16).equals(META)) await fixPage83(fh, off, seed);
    }
    for (const hOff of [KiB64]) {
      const h = Buffer.alloc(4096);
      await fh.read(h, 0, 4096, hOff);
      const logLen = h.readUInt32LE(68);
      const logOff = Number(h.readBigUInt64LE(72));
      if (logLen && logOff) await fh.write(Buffer.alloc(logLen), 0, logLen, logOff);
    }
  } finally {
    await fh.close();
  }
}

async function fixPage83(fh: import("node:fs/promises").FileHandle, metaOff: number, seed: string): Promise<void> {
  const PAGE83 = guidBytes("BECA12AB-B2E6-4523-93EF-C309E000C746");
  const t = Buffer.alloc(KiB64);
  await fh.read(t, 0, KiB64, metaOff);
  const count = t.readUInt16LE(10);
  for (let e = 0; e < count; e++) {
    const o = 32 + e * 32;
    if (t.subarray(o, o + 16).equals(PAGE83)) {
      const itemOff = t.readUInt32LE(o + 16);
      await fh.write(guidBytes(derivedGuid(sha256Hex(`${seed}:vhdx:page83`))), 0, 16, metaOff + itemOff);
    }
  }
}
