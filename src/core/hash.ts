import { createHash, hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { Transform } from "node:stream";

/** An OCI-style digest: "sha256:" + 64 hex. Branded so raw strings don't pass by accident. */
export type Digest = string & { readonly __digest: unique symbol };

/** One-shot (crypto.hash: no Hash object per call, ~3x faster for the thousands of small strings an SBOM hashes). */
export function sha256Hex(data: string | Uint8Array): string {
  return hash("sha256", data, "hex");
}

export function digestOf(data: string | Uint8Array): Digest {
  return `sha256:${sha256Hex(data)}` as Digest;
}

export function asDigest(s: string): Digest {
  if (!/^sha256:[0-9a-f]{64}$/.test(s)) throw new Error(`not a sha256 digest: ${s}`);
  return s as Digest;
}

export function hexOf(d: Digest): string {
  return d.slice("sha256:".length);
}

/**
 * sha256 of a large file on another thread, so that the main thread (and the
 * next stage: mksquashfs, qemu-img, writing the disk) goes on meanwhile; a
 * disk image's provenance costs ~1 s per GB of hashing otherwise on the
 * critical path. Small files are hashed here.
 */
export async function sha256FileOffThread(path: string, size: number): Promise<string> {
  if (size < 16 << 20) return sha256File(path, size);
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    const { createHash } = require("node:crypto");
    const { createReadStream } = require("node:fs");
    const h = createHash("sha256");
    createReadStream(workerData, { highWaterMark: 4 << 20 })
      .on("data", (c) => h.update(c))
      .on("error", (e) => { throw e; })
      .on("end", () => parentPort.postMessage(h.digest("hex")));`;
  return runWorker<string>(code, path);
}

/**
 * Run `code` (CommonJS source) on a worker thread with `workerData`: the first
 * message it posts is the result; an error, or an exit before any message, is
 * the failure.
 */
export async function runWorker<T>(code: string, workerData: unknown): Promise<T> {
  const { Worker } = await import("node:worker_threads");
  return new Promise<T>((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData });
    w.once("message", (v: T) => {
      resolve(v);
      void w.terminate();
    });
    w.once("error", reject);
    w.once("exit", (c) => reject(new Error(`a worker thread stopped (exit code ${c}) before its result`)));
  });
}

/** The sha256 of a file being written, computed on another thread as it grows (see sha256Follow). */
export interface FollowHash {
  /** The first `bytes` bytes of the file are written: hash up to there. */
  advance(bytes: number): void;
  /** The same number, for writers on other threads to store themselves (element 0, bytes written; kiln's native copy thread does). */
  progress: BigInt64Array;
  /** The file is complete at `size` bytes: its digest (hex) once the thread has read it all. */
  end(size: number): Promise<string>;
  /** Stop: the file is abandoned. */
  abort(): void;
}

/**
 * Hash a file while it is being written: a worker thread reads (from the page
 * cache) what the writer reports as written and hashes it, so the digest is
 * ready about when the last byte is written instead of one full read later.
 * Composing copies layer bytes on kiln's native copy thread, so they never
 * pass through JavaScript; hashing them as they land keeps both cores busy.
 * The writer and the worker share counters (bytes written, state, and a
 * report number the worker sleeps on) through a SharedArrayBuffer; native
 * threads store the bytes written without waking the worker (they cannot
 * notify a JavaScript waiter), so it also looks every 2 ms.
 */
export async function sha256Follow(path: string): Promise<FollowHash> {
  const { Worker } = await import("node:worker_threads");
  const { closeSync, openSync } = await import("node:fs");
  const sab = new SharedArrayBuffer(24);
  const shared = new BigInt64Array(sab, 0, 2); // [0] bytes written, [1] state: 0 writing, 1 complete, 2 aborted
  const seq = new Int32Array(sab, 16, 1); // bumped by every report: the worker sleeps on it
  const fd = openSync(path, "r"); // closed here when the worker is done (a worker may not close what it did not open)
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    const { createHash } = require("node:crypto");
    const { readSync } = require("node:fs");
    const shared = new BigInt64Array(workerData.sab, 0, 2);
    const seq = new Int32Array(workerData.sab, 16, 1);
    const h = createHash("sha256");
    const buf = Buffer.allocUnsafe(1 << 20);
    let done = 0;
    for (;;) {
      const seen = Atomics.load(seq, 0); // before the counters: a report after this wakes the wait below
      const written = Number(Atomics.load(shared, 0));
      if (done < written) {
        const n = readSync(workerData.fd, buf, 0, Math.min(buf.length, written - done), done);
        if (n <= 0) throw new Error("the file ends at " + done + ", " + written + " bytes were written");
        h.update(buf.subarray(0, n));
        done += n;
        continue;
      }
      const state = Atomics.load(shared, 1);
      if (state === 2n) break;
      if (state === 1n) {
        if (done < Number(Atomics.load(shared, 0))) continue;
        parentPort.postMessage(h.digest("hex"));
        break;
      }
      Atomics.wait(seq, 0, seen, 2);
    }`;
  const worker = new Worker(code, { eval: true, workerData: { sab, fd } });
  worker.once("exit", () => closeSync(fd));
  worker.unref(); // a writer that fails and never calls end() or abort() must not keep kiln alive
  const digest = new Promise<string>((resolve, reject) => {
    worker.once("message", (hex: string) => resolve(hex));
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`the hashing thread stopped (exit code ${code}) before the file was complete`)));
  });
  digest.catch(() => undefined); // observed by end(); an aborted file's promise is never awaited
  let stopped = false;
  const signal = (index: number, v: number) => {
    Atomics.store(shared, index, BigInt(v));
    Atomics.add(seq, 0, 1);
    Atomics.notify(seq, 0);
  };
  return {
    advance: (bytes) => signal(0, bytes),
    progress: shared,
    end: async (size) => {
      worker.ref();
      signal(0, size);
      signal(1, 1);
      try {
        return await digest;
      } finally {
        stopped = true;
      }
    },
    abort: () => {
      if (stopped) return;
      stopped = true;
      signal(1, 2); // the worker stops; its exit closes the descriptor
    },
  };
}

export async function sha256File(path: string, knownSize?: number): Promise<string> {
  // Small files (recipes, scripts, configs) in one read: a stream costs more than the hashing.
  if (knownSize !== undefined && knownSize < 1 << 20) return sha256Hex(await readFile(path));
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/**
 * Canonical JSON: object keys sorted, no whitespace, undefined dropped. The
 * cache key of a target is the sha256 of this serialization of its input record.
 */
export function stableJson(value: unknown): string {
  return JSON.stringify(sortDeep(value));
}

function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortDeep(x);
    }
    return out;
  }
  return v;
}

/** A pass-through stream that hashes and counts what flows through it (for streaming into the store). */
export function hashingTap(): { stream: import("node:stream").Transform; digest(): Digest; size(): number } {
  const h = createHash("sha256");
  let n = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      n += chunk.length;
      cb(null, chunk);
    },
  });
  let done: Digest | undefined;
  return { stream, digest: () => (done ??= `sha256:${h.digest("hex")}` as Digest), size: () => n };
}
