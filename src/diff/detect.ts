import { open } from "node:fs/promises";

export type Format = "tar" | "squashfs" | "ext4" | "fat" | "erofs" | "gpt" | "qcow2" | "unknown";

/** What an image (or a partition at `offset`) holds, by its magic numbers. */
export async function detect(path: string, offset = 0): Promise<Format> {
  const fh = await open(path, "r");
  try {
    const b = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(b, 0, 4096, offset);
    if (bytesRead >= 4 && b.toString("latin1", 0, 4) === "hsqs") return "squashfs";
    if (bytesRead >= 4 && b.toString("latin1", 0, 4) === "QFI\xfb") return "qcow2";
    if (bytesRead >= 520 && b.toString("latin1", 512, 520) === "EFI PART") return "gpt";
    if (bytesRead >= 1082 && b.readUInt16LE(1080) === 0xef53) return "ext4";
    if (bytesRead >= 1028 && b.readUInt32LE(1024) === 0xe0f5e1e2) return "erofs";
    const boot = bytesRead >= 512 && b[510] === 0x55 && b[511] === 0xaa;
    if (boot && (b.toString("latin1", 54, 57) === "FAT" || b.toString("latin1", 82, 87) === "FAT32")) return "fat";
    if (bytesRead >= 262 && b.toString("latin1", 257, 262) === "ustar") return "tar";
    return "unknown";
  } finally {
    await fh.close();
  }
}
