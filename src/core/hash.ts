import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { Transform } from "node:stream";

/** An OCI-style digest: "sha256:" + 64 hex. Branded so raw strings don't pass by accident. */
export type Digest = string & { readonly __digest: unique symbol };

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
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
  const { Worker } = await import("node:worker_threads");
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    const { createHash } = require("node:crypto");
    const { createReadStream } = require("node:fs");
    const h = createHash("sha256");
    createReadStream(workerData, { highWaterMark: 4 << 20 })
      .on("data", (c) => h.update(c))
      .on("error", (e) => { throw e; })
      .on("end", () => parentPort.postMessage(h.digest("hex")));`;
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: path });
    w.once("message", (hex: string) => {
      resolve(hex);
      void w.terminate();
    });
    w.once("error", reject);
  });
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
