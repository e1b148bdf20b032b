import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { sha256File } from "../core/hash.js";
import type { Store } from "./layout.js";

/** The shared download cache: <store>/kiln/downloads, or $KILN_DOWNLOADS (e.g. one cache for several stores). */
export function downloadDir(store: Store): string {
  return process.env.KILN_DOWNLOADS || join(store.kilnDir, "downloads");
}

/** Re-hash every file of the download cache (named by its sha256); `repair` removes the corrupt ones. */
export async function fsckDownloads(store: Store, repair: boolean): Promise<{ files: number; corrupt: string[] }> {
  const dir = downloadDir(store);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^[0-9a-f]{64}$/.test(n));
  const corrupt: string[] = [];
  for (const n of names) {
    if ((await sha256File(join(dir, n)).catch(() => "unreadable")) === n) continue;
    corrupt.push(join(dir, n));
    if (repair) await Promise.all([rm(join(dir, n), { force: true }), rm(join(dir, `${n}.verified`), { force: true })]);
  }
  return { files: names.length, corrupt };
}
