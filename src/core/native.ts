import { createRequire } from "node:module";
import { KILN_ROOT } from "./paths.js";

/** What native/kiln_native.c gives (built into dist/native/ by `npm run build`). */
export interface Native {
  /**
   * Write a plan at outPos, on kiln's copy thread (beside JavaScript's).
   * The plan is `segments`, triples (source, offset, length) laid end to end:
   * a source ≥ 0 is a file descriptor (read with pread), -1-i is buffers[i].
   * Plans are written in the order given; `progress[0]`, when given (shared
   * memory), is set to the file offset up to which this plan and the ones
   * before it are written, or to -1 for good once a plan with that cell
   * failed (later ones with it are not copied). The buffers must stay as they
   * are until the promise settles. Rejects with errno codes (EBADF, ENOSPC …;
   * ESHORTINPUT when a file ended before the plan said), the error's `fd` and
   * `offset` saying where; bad arguments throw (EINVAL).
   */
  writeSegments(outFd: number, outPos: number, segments: Float64Array, buffers: Buffer[], progress?: BigInt64Array): Promise<void>;
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
