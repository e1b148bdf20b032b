import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import { blobHexOf, type Store } from "../store/layout.js";
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

/** Bump when the cached form changes: older files are then indexed again. */
const CACHE_VERSION = 1;
const TYPE_CODES: TarIndexEntry["type"][] = ["file", "link", "symlink", "character-device", "block-device", "directory", "fifo"];
type Row = [name: string, type: number, mode: number, uid: number, gid: number, size: number, offset: number, linkname: string, devmajor: number, devminor: number, xattrs?: Record<string, string>];

/** The cache file of a store blob (…/blobs/sha256/<hex>, whole or a range of it), or undefined for other files. */
export function tarIndexCacheName(path: string, start: number, length: number | undefined): string | undefined {
  const hex = blobHexOf(path);
  if (!hex) return undefined;
  return start || length !== undefined ? `${hex}-${start}-${length ?? ""}.json` : `${hex}.json`;
}

/**
 * indexTar for store blobs, remembered in `cacheDir` (<store>/kiln/tar-index/):
 * a blob's name is its sha256, so its headers never change, and composing an
 * image reads one small file per layer instead of every header of it (4,600
 * headers of a 400 MB image: ~50 ms → ~10 ms). Other files are indexed as usual.
 */
export async function indexTarCached(cacheDir: string, path: string, start = 0, length?: number): Promise<TarIndexEntry[]> {
  const name = tarIndexCacheName(path, start, length);
  if (!name) return indexTarSync(path, start, length);
  const file = join(cacheDir, name);
  const text = await readFile(file, "utf8").catch(() => undefined);
  if (text) {
    try {
      const c = JSON.parse(text) as { v: number; rows: Row[] };
      if (c.v === CACHE_VERSION) {
        return c.rows.map((r) => ({
          name: r[0],
          type: TYPE_CODES[r[1]]!,
          mode: r[2],
          uid: r[3],
          gid: r[4],
          size: r[5],
          offset: r[6],
          linkname: r[7],
          devmajor: r[8],
          devminor: r[9],
          ...(r[10] ? { xattrs: r[10] } : {}),
        }));
      }
    } catch {
      // unreadable: indexed again and rewritten below
    }
  }
  const entries = indexTarSync(path, start, length);
  const rows: Row[] = entries.map((e) => {
    const r: Row = [e.name, TYPE_CODES.indexOf(e.type), e.mode, e.uid, e.gid, e.size, e.offset, e.linkname, e.devmajor, e.devminor];
    if (e.xattrs) r.push(e.xattrs);
    return r;
  });
  // a cache: a full disk or a read-only store only costs the next compose the headers again
  await writeFileAtomic(file, JSON.stringify({ v: CACHE_VERSION, rows }), { sync: false }).catch(() => undefined);
  return entries;
}

/** indexTarCached with the store's own cache folder, <store>/kiln/tar-index/ (swept by `kiln store gc` with the blobs). */
export function indexStoreBlob(store: Pick<Store, "kilnDir">, path: string, start = 0, length?: number): Promise<TarIndexEntry[]> {
  return indexTarCached(join(store.kilnDir, "tar-index"), path, start, length);
}
