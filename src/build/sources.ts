import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { KilnError, type Location } from "../core/errors.js";
import { runSignal } from "../core/interrupt.js";
import { sha256File } from "../core/hash.js";
import type { Store } from "../store/layout.js";

export interface FetchOptions {
  offline: boolean;
  /** Where the sha256 is declared, for the error (computed only when needed). */
  location?: () => Location;
  onProgress?: (msg: string) => void;
}

/** The shared download cache: <store>/kiln/downloads, or $KILN_DOWNLOADS (e.g. one cache for several stores). */
export function downloadDir(store: Store): string {
  return process.env.KILN_DOWNLOADS || join(store.kilnDir, "downloads");
}

export function downloadPath(store: Store, sha256: string): string {
  return join(downloadDir(store), sha256);
}

/**
 * Get a pinned download into the shared cache (once for all projects and
 * variants) and return its path. The bytes are hashed while they stream in and
 * only a file with the declared sha256 is renamed into the cache.
 */
export async function fetchSource(store: Store, url: string, sha256: string, opts: FetchOptions): Promise<string> {
  const final = downloadPath(store, sha256);
  if (await stat(final).then(() => true, () => false)) {
    if ((await sha256File(final)) === sha256) return final;
    await rm(final, { force: true });
  }
  if (opts.offline && !url.startsWith("file://")) {
    throw new KilnError("E_SOURCE_FETCH", `${url} is not in the download cache and --offline forbids downloading it`, {
      location: opts.location?.(),
      hint: "run once without --offline to fill the cache",
    });
  }
  await mkdir(downloadDir(store), { recursive: true });
  // Beside the final name (not in the store's tmp/): $KILN_DOWNLOADS may be on another file system.
  const tmp = `${final}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const hash = createHash("sha256");
  const hasher = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  try {
    opts.onProgress?.(`fetching ${url}`);
    let body: Readable;
    if (url.startsWith("file://")) {
      body = createReadStream(fileURLToPath(url));
    } else {
      const res = await fetch(url, { signal: runSignal, redirect: "follow" });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} ${res.statusText}`);
      body = Readable.fromWeb(res.body as import("node:stream/web").ReadableStream);
    }
    await pipeline(body, hasher, createWriteStream(tmp, { flags: "wx", mode: 0o444 }));
  } catch (err) {
    await rm(tmp, { force: true });
    if (runSignal.aborted) throw new KilnError("E_INTERRUPTED", "interrupted during a download");
    throw new KilnError("E_SOURCE_FETCH", `cannot download ${url}: ${(err as Error).message}`, { location: opts.location?.(), cause: err });
  }
  const got = hash.digest("hex");
  if (got !== sha256) {
    await rm(tmp, { force: true });
    throw new KilnError("E_SOURCE_CHECKSUM", `${url} has sha256 ${got}, but the recipe declares ${sha256}`, {
      location: opts.location?.(),
      hint: "if the new file is trusted, put the sha256 shown into the recipe",
    });
  }
  await rename(tmp, final);
  return final;
}
