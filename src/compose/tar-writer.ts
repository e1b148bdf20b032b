import { closeSync, openSync, readSync, writeSync } from "node:fs";
import type { FollowHash } from "../core/hash.js";
import { native } from "../core/native.js";
import type { TarIndexEntry } from "./tarindex.js";

/**
 * A tar writer for composing big root file systems at copy speed. Hand-written
 * because the streaming writers (tar-stream) cost several small writes and a
 * stream per entry, which for thousands of small files is most of the time.
 * Here adding an entry only plans it: its header (made here) and its body (a
 * range of a layer file, or bytes kiln made) become pieces of a plan, and the
 * plan is written in batches by kiln's native copy thread (native/: large
 * ranges by copy_file_range, the rest gathered into 64 KiB writes), so the
 * JavaScript thread neither reads nor writes file bodies and goes on with
 * other work (an image's SBOM) meanwhile. Without the native module the same
 * plan is written here, with reads into one buffer and positional writes.
 * Headers are ustar; a pax record carries what ustar cannot hold (long names
 * and link targets, big ids and sizes, xattrs).
 *
 * What an entry's header says: the fields the index reads, plus the time, with the optional ones optional. */
export interface TarHeader extends Pick<TarIndexEntry, "name" | "type" | "mode" | "uid" | "gid" | "size">, Partial<Pick<TarIndexEntry, "linkname" | "devmajor" | "devminor">> {
  mtime: number;
  pax?: Record<string, string>;
}

const TYPEFLAG: Record<TarHeader["type"], string> = { file: "0", link: "1", symlink: "2", "character-device": "3", "block-device": "4", directory: "5", fifo: "6" };
/** Headers, padding and small bodies kiln made are gathered in chunks of this size. */
const CHUNK = 256 << 10;
/** Bytes kiln made from this size on (an SBOM) are a piece of their own, not copied into a chunk. */
const OWN_PIECE = 64 << 10;
/** The plan is handed to the copy thread in batches of this many bytes (and before waiting on anything). */
const BATCH = 8 << 20;
/** The buffer of the fallback (no native module): reads gather here, one write empties it. */
const STAGE = 256 << 10;

/** `v` as zero-padded octal digits and a NUL in buf[off, off+len) (digit by digit: no strings made, thousands of headers); returns the bytes' sum, for the checksum. */
function octal(buf: Buffer, off: number, len: number, v: number): number {
  v = Math.min(Math.max(0, Math.floor(v)), 8 ** (len - 1) - 1); // what the field can hold (callers put bigger values in pax records)
  let sum = 0;
  for (let i = off + len - 2; i >= off; i--) {
    const d = 48 + (v % 8);
    buf[i] = d;
    sum += d;
    v = Math.floor(v / 8);
  }
  buf[off + len - 1] = 0;
  return sum;
}

/** Text into buf at off, at most `max` bytes; returns the bytes' sum, for the checksum. */
function text(buf: Buffer, off: number, max: number, s: string): number {
  const n = buf.write(s, off, max, "utf8");
  let sum = 0;
  for (let i = off; i < off + n; i++) sum += buf[i]!;
  return sum;
}

/** "ustar\0" "00": the magic and version of a ustar header. */
const MAGIC = Buffer.from("ustar\u000000", "latin1");
const MAGIC_SUM = MAGIC.reduce((a, b) => a + b, 0);

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
  /** The batch being gathered: triples (source, offset, length); a source ≥ 0 is a file descriptor, -1-i is bufs[i]. */
  private segs: number[] = [];
  private bufs: Buffer[] = [];
  private bufIndex = new Map<Buffer, number>();
  /** Where headers, padding and small bodies are made (shared by batches: each reads only its own bytes). */
  private chunk = Buffer.alloc(CHUNK);
  private used = 0;
  /** Bytes planned so far: where the next piece goes in the file. */
  private planned = 0;
  /** Where the batch being gathered starts in the file. */
  private batchStart = 0;
  /** Batches handed to the copy thread (they settle in file order and never reject: a failure goes to `failed`). */
  private readonly writing: Promise<void>[] = [];
  /** The first failure of a batch (thrown by the next add, or by finish). */
  private failed?: unknown;
  private readonly inputs = new Map<string, number>();
  private readonly names = new Map<number, string>();
  private readonly direct = native();
  /** The fallback's buffer (no native module). */
  private stage?: Buffer;
  private closed = false;

  /** Told how far the file is written (a hash of it on another thread): the copy thread stores it in f.progress itself. */
  private follow?: FollowHash;

  constructor(private readonly path: string) {
    this.fd = openSync(path, "wx", 0o644);
  }

  /** Report progress to `f` from now on (before the first batch is sent; the file exists once the writer does, so `f` can open it). */
  followWith(f: FollowHash): void {
    this.follow = f;
  }

  /** Add an entry; a file's data is read from `source` (file, offset) or taken from `data` (which must not change until finish). */
  add(h: TarHeader, body?: { file: string; offset: number } | { data: Buffer }): void {
    if (this.failed !== undefined) throw this.failed;
    const size = this.headers(h);
    if (!size || !body) return;
    if ("data" in body) this.data(body.data.subarray(0, size));
    else {
      this.piece(this.input(body.file), body.offset, size);
      this.pad(size);
    }
  }

  /** Hand what is planned so far to the copy thread (before waiting for something, so it works meanwhile). */
  send(): void {
    const len = this.planned - this.batchStart;
    if (!len) return;
    const start = this.batchStart;
    const segs = this.segs;
    const bufs = this.bufs;
    this.segs = [];
    this.bufs = [];
    this.bufIndex = new Map();
    this.batchStart = this.planned;
    if (!this.direct) {
      this.writeHere(start, segs, bufs);
      this.follow?.advance(this.planned);
      return;
    }
    this.writing.push(
      this.direct.writeSegments(this.fd, start, Float64Array.from(segs), bufs, this.follow?.progress).then(
        () => undefined,
        (err: NodeJS.ErrnoException & { fd?: number; offset?: number }) => {
          this.failed ??= this.explain(err);
        },
      ),
    );
  }

  /** A native error, naming the file it was reading or writing. */
  private explain(err: NodeJS.ErrnoException & { fd?: number; offset?: number }): Error {
    const file = err.fd === undefined ? undefined : this.names.get(err.fd);
    if (err.code === "ESHORTINPUT") return this.endedEarly(err.fd!, err.offset!);
    if (file) err.message = `reading ${file}: ${err.message}`;
    else if (err.fd === this.fd) err.message = `writing ${this.path}: ${err.message}`;
    return err;
  }

  /** An input file shorter than its index says. */
  private endedEarly(fd: number, at: number): Error {
    return new Error(`${this.names.get(fd) ?? `input fd ${fd}`} ended early at ${at}`);
  }

  /** A piece of the plan: `len` bytes from a file descriptor or a buffer, cut where a batch is full. */
  private piece(src: number | Buffer, off: number, len: number): void {
    while (len > 0) {
      const n = Math.min(len, this.batchStart + BATCH - this.planned);
      let s = src as number;
      if (typeof src !== "number") {
        let i = this.bufIndex.get(src);
        if (i === undefined) this.bufIndex.set(src, (i = this.bufs.push(src) - 1));
        s = -1 - i;
      }
      const k = this.segs.length;
      // right after the previous piece of the same source: one piece (a chunk's headers and padding, mostly)
      if (k && this.segs[k - 3] === s && this.segs[k - 2]! + this.segs[k - 1]! === off) this.segs[k - 1]! += n;
      else this.segs.push(s, off, n);
      this.planned += n;
      off += n;
      len -= n;
      if (this.planned - this.batchStart >= BATCH) this.send();
    }
  }

  /** Room for `n` (≤ CHUNK) bytes in the chunk: a new chunk when this one is short (zeroed: padding and headers' empty fields need no fill). */
  private room(n: number): void {
    if (this.used + n <= CHUNK) return;
    this.chunk = Buffer.alloc(CHUNK);
    this.used = 0;
  }

  /** Bytes kiln made (shorter than a chunk), copied into the chunk. */
  private bytes(b: Buffer): void {
    this.room(b.length);
    b.copy(this.chunk, this.used);
    this.piece(this.chunk, this.used, b.length);
    this.used += b.length;
  }

  /** Bytes kiln made, as a piece of their own when large (an SBOM), else copied into the chunk; padded to a block. */
  private data(b: Buffer): void {
    if (b.length >= OWN_PIECE) this.piece(b, 0, b.length);
    else this.bytes(b);
    this.pad(b.length);
  }

  /** Zeros up to the next 512-byte block after a body of `size` bytes. */
  private pad(size: number): void {
    this.zeros((512 - (size % 512)) % 512);
  }

  /** `n` zero bytes (the chunk's unused bytes are zero: it is written once, front to back). */
  private zeros(n: number): void {
    if (!n) return;
    this.room(n);
    this.piece(this.chunk, this.used, n);
    this.used += n;
  }

  /** A 512-byte header, made in the chunk (whose bytes are zero until written); its checksum summed as the fields are written. */
  private header(h: TarHeader, flag: string, name: string, size: number): void {
    this.room(512);
    const b = this.chunk;
    const o = this.used;
    const split = splitName(name) ?? ["", name.slice(0, 100)];
    let sum = 8 * 0x20 + MAGIC_SUM; // the checksum field counts as spaces
    sum += text(b, o, 100, split[1]);
    sum += octal(b, o + 100, 8, h.mode & 0o7777);
    sum += octal(b, o + 108, 8, h.uid); // clamped by octal (a bigger id is in the pax record)
    sum += octal(b, o + 116, 8, h.gid);
    sum += octal(b, o + 124, 12, size <= 0o77777777777 ? size : 0); // 0, not clamped: the pax record's size is the one
    sum += octal(b, o + 136, 12, h.mtime);
    b[o + 156] = flag.charCodeAt(0);
    sum += b[o + 156]!;
    if (h.linkname) sum += text(b, o + 157, 100, h.linkname.slice(0, 100));
    MAGIC.copy(b, o + 257);
    sum += octal(b, o + 329, 8, h.devmajor ?? 0);
    sum += octal(b, o + 337, 8, h.devminor ?? 0);
    if (split[0]) sum += text(b, o + 345, 155, split[0]);
    octal(b, o + 148, 7, sum); // six digits and a NUL
    b[o + 155] = 0x20;
    this.piece(b, o, 512);
    this.used += 512;
  }

  /** The header (and a pax record before it when needed); returns the size of the body that follows. */
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
      this.header({ ...h, linkname: undefined }, "x", paxName, text.length);
      this.data(text);
    }
    const size = h.type === "file" ? h.size : 0;
    this.header(h, TYPEFLAG[h.type], h.name, size);
    return size;
  }

  /** Without the native module: the batch's pieces read into one buffer and written, here. */
  private writeHere(start: number, segs: number[], bufs: Buffer[]): void {
    const stage = (this.stage ??= Buffer.allocUnsafe(STAGE));
    let used = 0;
    let out = start;
    const flush = () => {
      for (let w = 0; w < used; ) w += writeSync(this.fd, stage, w, used - w, out + w);
      out += used;
      used = 0;
    };
    for (let i = 0; i < segs.length; i += 3) {
      const src = segs[i]!;
      let at = segs[i + 1]!;
      let left = segs[i + 2]!;
      while (left > 0) {
        if (used === STAGE) flush();
        const k = Math.min(left, STAGE - used);
        const n = src >= 0 ? readSync(src, stage, used, k, at) : bufs[-1 - src]!.copy(stage, used, at, at + k);
        if (n <= 0) throw this.endedEarly(src, at);
        used += n;
        at += n;
        left -= n;
      }
    }
    flush();
  }

  private input(file: string): number {
    let fd = this.inputs.get(file);
    if (fd === undefined) {
      fd = openSync(file, "r");
      this.inputs.set(file, fd);
      this.names.set(fd, file);
    }
    return fd;
  }

  /** Two zero blocks, the rest of the plan sent, the copy thread waited for, close; returns the size of the tar. */
  async finish(): Promise<{ size: number }> {
    this.zeros(1024);
    this.send();
    await Promise.all(this.writing);
    if (this.failed !== undefined) throw this.failed;
    this.closed = true;
    closeSync(this.fd);
    this.closeInputs();
    return { size: this.planned };
  }

  /** Close without finishing (the caller removes the file), once the copy thread has stopped writing to it. */
  async abort(): Promise<void> {
    await Promise.all(this.writing);
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
