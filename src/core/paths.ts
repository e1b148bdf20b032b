import { fileURLToPath } from "node:url";

/**
 * kiln's own installation: the folder holding package.json, bin/, share/ and dist/.
 * This module is dist/core/paths.js, or a chunk of the bundle in dist/bundle/: both two
 * levels below the root, so one relative URL serves both.
 */
export const KILN_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** kiln's data files (default config partition contents, the Pygos shell helpers). */
export const SHARE_DIR = `${KILN_ROOT}share/`;
