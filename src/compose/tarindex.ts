import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { headerEntry, headerSize, isExtension, readExtension, type TarEntry, type TarExtensions, typeflagOf } from "../core/tar-header.js";

/** An entry of a tar file, with the offset of its data. */
export type TarIndexEntry = TarEntry;

/** Bytes read ahead at a time: a layer of small files has several headers per read; more costs a copy of data that is skipped. */
const WINDOW = 16 << 10;

/**
 * A header-only reader for tar files: it lists each entry with the byte range
 * of its data and skips the data by seeking. Hand-written because tar-stream
 * (like every streaming tar parser) must read through all data to reach the
 * next header; composing a rootfs only needs the headers first, then copies
 * the winning entries' bytes straight from the layer files.
 * Understands ustar, pax extended headers (path, linkpath, size, uid, gid,
 * mtime) and GNU long names (L/K).
 * The reads are synchronous: a tar of thousands of small files is thousands
 * of tiny reads, each a few microseconds, where a promise per read through
 * libuv's thread pool cost ~0.4 s for a 400 MB image.
 *
 * Index the tar at `path`, or the tar stored inside it at [start, start+length) (a kernel.tar inside a layer).
 */
export async function indexTar(path: string, start = 0, length?: number): Promise<TarIndexEntry[]> {
  return indexTarSync(path, start, length);
}

export function indexTarSync(path: string, start = 0, length?: number): TarIndexEntry[] {
  const fd = openSync(path, "r");
  try {
    const size = length === undefined ? fstatSync(fd).size : start + length;
    const win = Buffer.allocUnsafe(WINDOW);
    let winStart = 0;
    let winLen = 0;
    /** `n` bytes at `pos`, from the window when they are in it. */
    const bytes = (pos: number, n: number): Buffer => {
      if (pos + n > size) throw new Error(`${path} ends inside an entry at ${pos}`);
      if (pos < winStart || pos + n > winStart + winLen) {
        if (n > WINDOW) {
          const big = Buffer.allocUnsafe(n);
          if (readSync(fd, big, 0, n, pos) !== n) throw new Error(`${path} ends inside an entry at ${pos}`);
          return big;
        }
        winStart = pos;
        winLen = readSync(fd, win, 0, Math.min(WINDOW, size - pos), pos);
        if (winLen < n) throw new Error(`${path} ends inside an entry at ${pos}`);
      }
      return win.subarray(pos - winStart, pos - winStart + n);
    };
    const out: TarIndexEntry[] = [];
    let pos = start;
    let ext: TarExtensions = { pax: {} };
    while (pos + 512 <= size) {
      const header = bytes(pos, 512);
      if (header.every((b) => b === 0)) break;
      const typeflag = typeflagOf(header);
      const dataOff = pos + 512;
      if (isExtension(typeflag)) {
        const n = headerSize(header);
        readExtension(typeflag, Buffer.from(bytes(dataOff, n)), ext);
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
    closeSync(fd);
  }
}
