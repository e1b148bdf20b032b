import { closeSync, openSync, readSync, writeSync } from "node:fs";
import type { FollowHash } from "../core/hash.js";
import { native } from "../core/native.js";
import type { TarIndexEntry } from "./tarindex.js";

/**
 * A synchronous tar writer with a large output buffer, for composing big root
 * file systems at close to copy speed. Hand-written because the streaming
 * writers (tar-stream) cost several small writes and a stream per entry, which
 * for thousands of small files is most of the time; here an entry is a header
 * encode plus one ranged read from the layer file into the buffer, and a
 * large file's bytes go from the layer file to the tar in the kernel
 * (copy_file_range, as `cat` does), never through JavaScript.
 * Headers are ustar; a pax record carries what ustar cannot hold (long names
 * and link targets, big ids and sizes, xattrs).
 *
 * What an entry's header says: the fields the index reads, plus the time, with the optional ones optional. */
export interface TarHeader extends Pick<TarIndexEntry, "name" | "type" | "mode" | "uid" | "gid" | "size">, Partial<Pick<TarIndexEntry, "linkname" | "devmajor" | "devminor">> {
  mtime: number;
  pax?: Record<string, string>;
}

const TYPEFLAG: Record<TarHeader["type"], string> = { file: "0", link: "1", symlink: "2", "character-device": "3", "block-device": "4", directory: "5", fifo: "6" };
/** Output buffer: headers and small files gather here. Small enough to stay in the CPU's cache. */
const BUF = 1 << 20;
/** Bodies from this size on are copied in the kernel; below it a read into the buffer costs less than flushing it. */
const DIRECT_MIN = 64 << 10;
/** Bodies from this size on are copied on the thread pool, so the caller's other work runs meanwhile. */
const ASYNC_MIN = 1 << 20;
/** Large copies in flight at once (libuv's thread pool has 4 threads); the writer goes on past them. */
const MAX_COPIES = 3;
/** copy_file_range errors that mean "not between these files": copy through the buffer instead. */
const NO_DIRECT = new Set(["EXDEV", "ENOSYS", "EOPNOTSUPP", "EINVAL", "ENOTSUP", "EPERM"]);

function octal(buf: Buffer, off: number, len: number, v: number): boolean {
  const s = v.toString(8);
  if (s.length > len - 1) return false;
  buf.write(s.padStart(len - 1, "0"), off, "ascii");
  buf[off + len - 1] = 0;
  return true;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

/** Split a path into ustar's prefix (≤155) and name (≤100) at a slash, or undefined. */
function splitName(name: string): [string, string] | undefined {
  if (Buffer.byteLength(name) <= 100) return ["", name];
  for (let i = name.indexOf("/"); i !== -1; i = name.indexOf("/", i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest) return [prefix, rest];
  }
  return undefined;
}

export class TarWriter {
  private readonly fd: number;
  private readonly buf = Buffer.allocUnsafe(BUF);
  private used = 0;
  /** Bytes placed in the file so far, written or being copied (the buffer goes after them). */
  private total = 0;
  /** Ranges being copied on the thread pool, in file order: the writer has gone on past them. */
  private readonly pending: { start: number; done: Promise<void> }[] = [];
  /** Callers waiting for a large copy to finish (addSoon's answer when MAX_COPIES are in flight). */
  private readonly copyWaiters: (() => void)[] = [];
  /** The first failure of a copy in flight (reported by the next add or by finish). */
  private failed?: unknown;
  private readonly inputs = new Map<string, number>();
  /** Large bodies copied in the kernel, until a file system says it cannot. */
  private direct = native();

  /** Told how far the file is written after every write (a hash of it on another thread). */
  private follow?: FollowHash;

  constructor(path: string) {
    this.fd = openSync(path, "wx", 0o644);
  }

  /** Report progress to `f` from now on (the file exists once the writer does, so `f` can open it). */
  followWith(f: FollowHash): void {
    this.follow = f;
    this.advance();
  }

  /** Tell the follower how far the file is complete: up to the first range still being copied. */
  private advance(): void {
    this.follow?.advance(this.pending.length ? this.pending[0]!.start : this.total);
  }

  /** `n` more bytes are in the file (written, or copied by the kernel). */
  private wrote(n: number): void {
    this.total += n;
    this.advance();
  }

  /** The first `n` bytes of `b` to the end of the file. */
  private writeOut(b: Buffer, n: number): void {
    let off = 0;
    while (off < n) off += writeSync(this.fd, b, off, n - off, this.total + off);
    this.wrote(n);
  }

  private flush(): void {
    if (!this.used) return;
    this.writeOut(this.buf, this.used);
    this.used = 0;
  }

  private room(n: number): void {
    if (this.used + n > BUF) this.flush();
  }

  private put(b: Buffer): void {
    if (b.length > BUF) {
      // bigger than the buffer (an SBOM of a large image): straight to the file
      this.flush();
      this.writeOut(b, b.length);
      return;
    }
    this.room(b.length);
    b.copy(this.buf, this.used);
    this.used += b.length;
  }

  private pad(n: number): void {
    const p = (512 - (n % 512)) % 512;
    if (!p) return;
    this.room(p);
    this.buf.fill(0, this.used, this.used + p);
    this.used += p;
  }

  private header(h: TarHeader, flag: string, name: string, size: number): Buffer {
    const b = Buffer.alloc(512);
    const split = splitName(name) ?? ["", name.slice(0, 100)];
    b.write(split[1], 0, 100, "utf8");
    octal(b, 100, 8, h.mode & 0o7777);
    octal(b, 108, 8, Math.min(h.uid, 0o7777777));
    octal(b, 116, 8, Math.min(h.gid, 0o7777777));
    octal(b, 124, 12, size <= 0o77777777777 ? size : 0);
    octal(b, 136, 12, h.mtime);
    b.write(flag, 156, 1, "ascii");
    if (h.linkname) b.write(h.linkname.slice(0, 100), 157, 100, "utf8");
    b.write("ustar\u000000", 257, 8, "ascii");
    octal(b, 329, 8, h.devmajor ?? 0);
    octal(b, 337, 8, h.devminor ?? 0);
    b.write(split[0], 345, 155, "utf8");
    b.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += b[i]!;
    b.write(sum.toString(8).padStart(6, "0"), 148, 6, "ascii");
    b[154] = 0;
    b[155] = 0x20;
    return b;
  }

  private headers(h: TarHeader): number {
    const pax: Record<string, string> = { ...h.pax };
    if (!splitName(h.name)) pax.path = h.name;
    if (h.linkname && Buffer.byteLength(h.linkname) > 100) pax.linkpath = h.linkname;
    if (h.uid > 0o7777777) pax.uid = String(h.uid);
    if (h.gid > 0o7777777) pax.gid = String(h.gid);
    if (h.size > 0o77777777777) pax.size = String(h.size);
    const keys = Object.keys(pax).sort();
    if (keys.length) {
      const text = Buffer.from(keys.map((k) => paxRecord(k, pax[k]!)).join(""), "utf8");
      const paxName = `PaxHeaders/${h.name.split("/").pop()!.slice(0, 80)}`;
      this.put(this.header({ ...h, linkname: undefined }, "x", paxName, text.length));
      this.put(text);
      this.pad(text.length);
    }
    const size = h.type === "file" ? h.size : 0;
    this.put(this.header(h, TYPEFLAG[h.type], h.name, size));
    return size;
  }

  /** Add an entry; a file's data is read from `source` (file, offset) or taken from `data`. */
  add(h: TarHeader, body?: { file: string; offset: number } | { data: Buffer }): void {
    const size = this.headers(h);
    if (!size || !body) return;
    if ("data" in body) this.put(body.data.subarray(0, size));
    else this.copyRange(body.file, body.offset, size);
    this.pad(size);
  }

  /**
   * As add, but a large body from a file is copied on the thread pool while
   * the writer goes on: its range of the tar is set aside (the next header's
   * place is known from the size) and filled when the copy is done. Returns a
   * promise to wait for before the next add when MAX_COPIES are in flight,
   * else undefined. finish() waits for all of them.
   * (Tried: every write in one ordered queue on the thread pool, so no two
   * threads contend for the tar's inode lock; less CPU spent spinning on it,
   * but slower: the queue moves only when the event loop has a turn.)
   */
  addSoon(h: TarHeader, body?: { file: string; offset: number } | { data: Buffer }): Promise<void> | undefined {
    if (this.failed !== undefined) throw this.failed;
    const direct = this.direct;
    if (!direct || !body || "data" in body || h.type !== "file" || h.size < ASYNC_MIN) {
      this.add(h, body);
      return undefined;
    }
    const size = this.headers(h);
    this.flush();
    const fd = this.input(body.file);
    const start = this.total;
    const copied = direct.copyFileRangeAsync(fd, body.offset, this.fd, start, size).then(
      (n) => {
        // fewer bytes than asked: through a buffer, which says why (as in copyRange)
        if (n !== size) this.copyAt(fd, body.file, body.offset, start, size);
      },
      (err: NodeJS.ErrnoException) => {
        if (!NO_DIRECT.has(err.code ?? "")) throw err;
        this.direct = null;
        this.copyAt(fd, body.file, body.offset, start, size);
      },
    );
    const done = copied.then(
      () => {
        this.pending.splice(this.pending.findIndex((p) => p.start === start), 1);
        this.advance();
        this.copyWaiters.shift()?.();
      },
      (err: unknown) => {
        this.failed ??= err;
        this.copyWaiters.shift()?.(); // whoever waits learns of it at its next add
      },
    );
    this.pending.push({ start, done });
    this.total += size;
    this.pad(size);
    return this.pending.length >= MAX_COPIES ? new Promise<void>((resolve) => this.copyWaiters.push(resolve)) : undefined;
  }

  /** A range copied through a buffer of its own to its set-aside place (a copy in flight could not be made in the kernel). */
  private copyAt(fd: number, file: string, offset: number, dest: number, size: number): void {
    const b = Buffer.allocUnsafe(Math.min(size, BUF));
    for (let done = 0; done < size; ) {
      const n = readSync(fd, b, 0, Math.min(size - done, b.length), offset + done);
      if (n <= 0) throw new Error(`${file} ended early at ${offset + done}`);
      for (let w = 0; w < n; ) w += writeSync(this.fd, b, w, n - w, dest + done + w);
      done += n;
    }
  }

  private input(file: string): number {
    let fd = this.inputs.get(file);
    if (fd === undefined) {
      fd = openSync(file, "r");
      this.inputs.set(file, fd);
    }
    return fd;
  }

  private copyRange(file: string, offset: number, size: number): void {
    const fd = this.input(file);
    if (this.direct && size >= DIRECT_MIN) {
      this.flush();
      try {
        // fewer bytes than asked (0 where a file system cannot copy in the kernel, or a short file):
        // through the buffer, which says which
        if (this.direct.copyFileRange(fd, offset, this.fd, this.total, size) === size) {
          this.wrote(size);
          return;
        }
      } catch (err) {
        if (!NO_DIRECT.has((err as NodeJS.ErrnoException).code ?? "")) throw err;
      }
      this.direct = null; // and copy this one through the buffer, over whatever part landed
    }
    let left = size;
    let pos = offset;
    while (left > 0) {
      if (this.used === BUF) this.flush();
      const n = readSync(fd, this.buf, this.used, Math.min(left, BUF - this.used), pos);
      if (n <= 0) throw new Error(`${file} ended early at ${pos}`);
      this.used += n;
      pos += n;
      left -= n;
    }
  }

  private closed = false;

  /** Two zero blocks, flush, wait for the copies in flight, close; returns the size of the tar. */
  async finish(): Promise<{ size: number }> {
    this.room(1024);
    this.buf.fill(0, this.used, this.used + 1024);
    this.used += 1024;
    this.flush();
    await Promise.all(this.pending.map((p) => p.done));
    if (this.failed !== undefined) throw this.failed;
    this.closed = true;
    closeSync(this.fd);
    this.closeInputs();
    return { size: this.total };
  }

  /** Close without finishing (the caller removes the file), once the copies in flight have stopped writing to it. */
  async abort(): Promise<void> {
    await Promise.all(this.pending.map((p) => p.done));
    // after finish() the descriptor number may already belong to another file: never close it twice
    if (!this.closed) {
      this.closed = true;
      closeSync(this.fd);
    }
    this.closeInputs();
  }

  private closeInputs(): void {
    for (const fd of this.inputs.values()) closeSync(fd);
    this.inputs.clear();
  }
}
