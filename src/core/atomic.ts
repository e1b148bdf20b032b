import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname, basename, join } from "node:path";

/** A temp name beside the final one, so the final rename stays on one file system. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.tmp-${basename(path)}-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/**
 * Write a whole file under a temp name, fsync it (unless told not to), then rename it into place:
 * readers see the old content or the new, never half of it, even after kill -9.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number; sync?: boolean } = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  const fh = await open(tmp, "wx", opts.mode ?? 0o644);
  try {
    await fh.writeFile(data);
    // fsync only where a power cut must not lose the file (the store's index); a kill -9 never needs it.
    if (opts.sync ?? true) await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
