import { createReadStream } from "node:fs";
import { mkdir, open, readFile, readdir, rename, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import { KilnError } from "../core/errors.js";
import { type Digest, digestOf, hexOf, sha256File } from "../core/hash.js";
import { acquireLock, Mutex } from "./lock.js";
import { randomBytes } from "node:crypto";

/** The hex digest of a store blob's path (…/blobs/sha256/<hex>, as blobPath gives), else undefined: caches kept per blob key by it. */
export function blobHexOf(path: string): string | undefined {
  return /\/blobs\/sha256\/([0-9a-f]{64})$/.exec(path)?.[1];
}

export const MT = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

export const REF_ANNOTATION = "org.opencontainers.image.ref.name";
export const KEY_ANNOTATION = "dev.kiln.key";
export const USED_ANNOTATION = "dev.kiln.used";

export function defaultStoreDir(): string {
  if (process.env.KILN_STORE) return process.env.KILN_STORE;
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(cache, "kiln");
}

/**
 * The store: an OCI image layout (oci-layout, index.json, blobs/sha256/…)
 * that skopeo and umoci read as is, plus kiln's own bookkeeping under kiln/
 * (temp files, locks, the download cache, tool versions).
 *
 * Invariants that survive kill -9: a blob file only ever appears under its
 * final name by rename, after its digest was checked; index.json is replaced
 * by rename under the index lock. Anything else left behind is a temp file that
 * `store gc` removes.
 */
export class Store {
  private readonly indexMutex = new Mutex();
  /** index.json as last read or written here, known by inode, size and mtime (a writer renames a new file into place). */
  private indexCache?: { ino: number; mtimeMs: number; size: number; index: OciIndex };

  private constructor(readonly root: string) {}

  static async open(root: string): Promise<Store> {
    const s = new Store(root);
    try {
      await mkdir(join(root, "blobs", "sha256"), { recursive: true });
      await mkdir(join(root, "kiln", "tmp"), { recursive: true });
      await s.ensureFile("oci-layout", JSON.stringify({ imageLayoutVersion: "1.0.0" }));
      await s.ensureFile("index.json", JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: [] }));
    } catch (err) {
      throw new KilnError("E_STORE_IO", `cannot open the store at ${root}: ${(err as Error).message}`, {
        hint: "pass --store DIR or set KILN_STORE to a writable folder",
        cause: err,
      });
    }
    return s;
  }

  private async ensureFile(name: string, content: string): Promise<void> {
    const p = join(this.root, name);
    try {
      await stat(p);
    } catch {
      await writeFileAtomic(p, content);
    }
  }

  get kilnDir(): string {
    return join(this.root, "kiln");
  }

  blobPath(d: Digest): string {
    return join(this.root, "blobs", "sha256", hexOf(d));
  }

  /** A fresh temp path on the store's file system; `store gc` removes leftovers. */
  tempPath(label = "blob"): string {
    return join(this.root, "kiln", "tmp", `${label}-${process.pid}-${randomBytes(6).toString("hex")}`);
  }

  async hasBlob(d: Digest): Promise<boolean> {
    return stat(this.blobPath(d)).then(() => true, () => false);
  }

  async readBlob(d: Digest): Promise<Buffer> {
    return readFile(this.blobPath(d));
  }

  blobStream(d: Digest) {
    return createReadStream(this.blobPath(d));
  }

  async readJson<T>(d: Digest): Promise<T> {
    return JSON.parse((await this.readBlob(d)).toString("utf8")) as T;
  }

  /** Put bytes in the store: exclusive, or verify what is already there, then rename. */
  async putBytes(data: Uint8Array | string, mediaType: string): Promise<Descriptor> {
    const buf = typeof data === "string" ? Buffer.from(data) : data;
    const digest = digestOf(buf);
    const final = this.blobPath(digest);
    if (!(await this.verifyExisting(final, hexOf(digest)))) {
      const tmp = this.tempPath();
      // No fsync: a blob is verified by fsck against its name, and a torn one is rebuilt.
      const fh = await open(tmp, "wx", 0o444);
      await fh.writeFile(buf);
      await fh.close();
      await rename(tmp, final);
    }
    return { mediaType, digest, size: buf.length };
  }

  /**
   * Move a finished temp file (written under tempPath, digest already known
   * from hashing the stream) into the store.
   */
  async ingestFile(tmp: string, digest: Digest, size: number, mediaType: string): Promise<Descriptor> {
    const final = this.blobPath(digest);
    if (await this.verifyExisting(final, hexOf(digest))) {
      await rm(tmp, { force: true });
    } else {
      await rename(tmp, final);
    }
    return { mediaType, digest, size };
  }

  /** True if a good copy is in place; a corrupt one is removed so the caller writes a fresh one. */
  private async verifyExisting(final: string, hex: string): Promise<boolean> {
    try {
      await stat(final);
    } catch {
      return false;
    }
    if ((await sha256File(final)) === hex) return true;
    await rm(final, { force: true });
    return false;
  }

  async readIndex(): Promise<OciIndex> {
    const p = join(this.root, "index.json");
    const st = await stat(p);
    const c = this.indexCache;
    if (c && c.ino === st.ino && c.mtimeMs === st.mtimeMs && c.size === st.size) return c.index;
    return this.rememberIndex(st, JSON.parse(await readFile(p, "utf8")) as OciIndex);
  }

  private rememberIndex(st: { ino: number; mtimeMs: number; size: number }, index: OciIndex): OciIndex {
    this.indexCache = { ino: st.ino, mtimeMs: st.mtimeMs, size: st.size, index };
    return index;
  }

  async resolveRef(ref: string): Promise<Descriptor | undefined> {
    const idx = await this.readIndex();
    return idx.manifests.find((m) => m.annotations?.[REF_ANNOTATION] === ref);
  }

  /** Change index.json under the store lock (other kiln processes) and a mutex (this one). */
  async updateIndex(fn: (idx: OciIndex) => OciIndex | undefined): Promise<void> {
    await this.indexMutex.run(() => this.updateIndexLocked(fn));
  }

  private async updateIndexLocked(fn: (idx: OciIndex) => OciIndex | undefined): Promise<void> {
    const lock = await acquireLock(join(this.root, "kiln", "index.lock"));
    try {
      // readIndex re-reads the file when another process replaced it (its inode, size or mtime changed)
      const next = fn(structuredClone(await this.readIndex()));
      if (next) {
        next.manifests.sort((a, b) => (a.annotations?.[REF_ANNOTATION] ?? "").localeCompare(b.annotations?.[REF_ANNOTATION] ?? ""));
        const p = join(this.root, "index.json");
        // No fsync: like the blobs, the index survives kill -9 by rename alone; fsck repairs what a power cut tears.
        await writeFileAtomic(p, JSON.stringify(next, null, 1) + "\n", { sync: false });
        this.rememberIndex(await stat(p), next);
      }
    } finally {
      await lock.release();
    }
  }

  /** Refs waiting for the next index write, and that write (see setRef). */
  private readonly queuedRefs = new Map<string, Descriptor>();
  private refBatch?: Promise<void>;

  /**
   * Point `ref` at a manifest. Refs set while an index write is waiting or
   * running go into the next write together (group commit): a cold build of
   * hundreds of small packages rewrote index.json once per package, each time
   * under the lock, which queued the steps behind one another.
   */
  setRef(ref: string, desc: Descriptor): Promise<void> {
    this.queuedRefs.set(ref, desc);
    this.refBatch ??= this.indexMutex.run(async () => {
      this.refBatch = undefined; // refs set from now on go into the write after this one
      const batch = new Map(this.queuedRefs);
      this.queuedRefs.clear();
      const day = today();
      await this.updateIndexLocked((idx) => {
        idx.manifests = idx.manifests.filter((m) => !batch.has(m.annotations?.[REF_ANNOTATION] ?? ""));
        for (const [r, d] of batch) idx.manifests.push({ ...d, annotations: { ...d.annotations, [REF_ANNOTATION]: r, [USED_ANNOTATION]: day } });
        return idx;
      });
    });
    return this.refBatch;
  }

  /** Note that a ref was used (for `store gc --older-than`); writes at most once a day per ref. */
  async touchRefs(refs: string[]): Promise<void> {
    const idx = await this.readIndex();
    const day = today();
    const stale = new Set(refs.filter((r) => idx.manifests.some((m) => m.annotations?.[REF_ANNOTATION] === r && m.annotations?.[USED_ANNOTATION] !== day)));
    if (!stale.size) return;
    await this.updateIndex((i) => {
      for (const m of i.manifests) if (stale.has(m.annotations?.[REF_ANNOTATION] ?? "")) m.annotations = { ...m.annotations, [USED_ANNOTATION]: day };
      return i;
    });
  }

  async listBlobs(): Promise<string[]> {
    return (await readdir(join(this.root, "blobs", "sha256"))).sort();
  }

  lockPath(name: string): string {
    return join(this.root, "kiln", "locks", `${name}.lock`);
  }
}

function today(): string {
  return new Date().toISOString().slice(0, 10);
}
