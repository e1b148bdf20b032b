import { open } from "node:fs/promises";
import { headerEntry, headerSize, isExtension, readExtension, type TarEntry, type TarExtensions, typeflagOf } from "../core/tar-header.js";

/** An entry of a tar file, with the offset of its data. */
export type TarIndexEntry = TarEntry;

/**
 * A header-only reader for tar files: it lists each entry with the byte range
 * of its data and skips the data by seeking. Hand-written because tar-stream
 * (like every streaming tar parser) must read through all data to reach the
 * next header; composing a rootfs only needs the headers first, then copies
 * the winning entries' bytes straight from the layer files.
 * Understands ustar, pax extended headers (path, linkpath, size, uid, gid,
 * mtime) and GNU long names (L/K).
 *
 * Index the tar at `path`, or the tar stored inside it at [start, start+length) (a kernel.tar inside a layer).
 */
export async function indexTar(path: string, start = 0, length?: number): Promise<TarIndexEntry[]> {
  const fh = await open(path, "r");
  try {
    const size = length === undefined ? (await fh.stat()).size : start + length;
    const out: TarIndexEntry[] = [];
    const header = Buffer.alloc(512);
    let pos = start;
    let ext: TarExtensions = { pax: {} };
    while (pos + 512 <= size) {
      await fh.read(header, 0, 512, pos);
      if (header.every((b) => b === 0)) break;
      const typeflag = typeflagOf(header);
      const dataOff = pos + 512;
      if (isExtension(typeflag)) {
        const n = headerSize(header);
        const bodyBuf = Buffer.alloc(n);
        await fh.read(bodyBuf, 0, n, dataOff);
        readExtension(typeflag, bodyBuf, ext);
        pos = dataOff + Math.ceil(n / 512) * 512;
        continue;
      }
      const { entry, dataSize } = headerEntry(header, ext, dataOff);
      if (entry) out.push(entry);
      pos = dataOff + Math.ceil(dataSize / 512) * 512;
      ext = { pax: {} };
    }
    return out;
  } finally {
    await fh.close();
  }
}
