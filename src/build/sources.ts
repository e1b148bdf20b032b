import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { KilnError, type Location } from "../core/errors.js";
import { runSignal } from "../core/interrupt.js";
import { sha256File } from "../core/hash.js";
import { downloadDir } from "../store/downloads.js";
import type { Store } from "../store/layout.js";

export interface FetchOptions {
  offline: boolean;
  /** Where the sha256 is declared, for the error (computed only when needed). */
  location?: () => Location;
  onProgress?: (msg: string) => void;
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
  const st = await stat(final).catch(() => undefined);
  if (st) {
    // Hashed once when it came in (or when first used by this kiln); after that a stamp of the file's
    // identity stands for the hash (a 70 MB kernel .deb: 0.2 s per build). `kiln store fsck` re-hashes.
    const stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
    if ((await readFile(`${final}.verified`, "utf8").catch(() => "")) === stamp) return final;
    if ((await sha256File(final)) === sha256) {
      await writeFile(`${final}.verified`, stamp).catch(() => undefined);
      return final;
    }
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
  const st2 = await stat(final);
  await writeFile(`${final}.verified`, `${st2.size}:${st2.mtimeMs}:${st2.ino}`).catch(() => undefined);
  return final;
}

