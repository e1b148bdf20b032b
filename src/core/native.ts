import { createRequire } from "node:module";
import { KILN_ROOT } from "./paths.js";

/** What native/kiln_native.c gives (built into dist/native/ by `npm run build`). */
export interface Native {
  /** copy_file_range(2) of `length` bytes from fdIn at posIn to fdOut at posOut, in the kernel; returns the bytes copied (fewer only at the end of fdIn). Throws errors with errno codes (EXDEV, EOPNOTSUPP …). */
  copyFileRange(fdIn: number, posIn: number, fdOut: number, posOut: number, length: number): number;
  /** The same on libuv's thread pool: the JavaScript thread goes on while the kernel copies. */
  copyFileRangeAsync(fdIn: number, posIn: number, fdOut: number, posOut: number, length: number): Promise<number>;
}

let loaded: Native | null | undefined;

/**
 * kiln's native module, or null when it is not built (no C compiler at
 * install time), not Linux, or turned off with KILN_NATIVE=0; callers then
 * do the same work with plain reads and writes.
 */
export function native(): Native | null {
  if (process.env.KILN_NATIVE === "0") return null;
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.platform !== "linux") return loaded;
  try {
    loaded = createRequire(import.meta.url)(`${KILN_ROOT}dist/native/kiln_native.node`) as Native;
  } catch {
    // not built: the fallback is correct, only slower
  }
  return loaded;
}
