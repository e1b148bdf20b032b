import { posix } from "node:path";
import { sha256Hex } from "../../core/hash.js";
import { renderCycloneDx } from "./cyclonedx.js";
import { SELF_ID, uuidV5 } from "./ids.js";
import type { Inventory } from "./inventory.js";
import { renderSpdx } from "./spdx.js";

export { collectInventory, type ImageInfo, type Inventory } from "./inventory.js";
export { hashTreeFiles } from "./files.js";

/** Bump when the documents' shape changes: it is part of the image tar's key. */
export const SBOM_VERSION = 1;

export const SBOM_FORMATS = ["spdx", "cyclonedx"] as const;
export type SbomFormat = (typeof SBOM_FORMATS)[number];

/** The file name ending of each format (rootfs.spdx.json, rootfs.cdx.json). */
const EXT: Record<SbomFormat, string> = { spdx: "spdx.json", cyclonedx: "cdx.json" };

/** kiln.yml `images.sbom`, as the schema admits it. */
export type SbomConfig = false | { formats?: SbomFormat[]; path?: string | false; files?: boolean };

export interface SbomOptions {
  formats: SbomFormat[];
  /** Folder in the image the documents go to; undefined: only beside the image. */
  path?: string;
  /** List every file of the image with its hashes. */
  files: boolean;
}

/** Defaults: both formats, embedded at /usr/share/sbom, files listed. `false` (or no format) turns SBOMs off. */
export function sbomOptions(cfg: SbomConfig | undefined): SbomOptions | undefined {
  if (cfg === false) return undefined;
  const formats = [...new Set(cfg?.formats ?? SBOM_FORMATS)].sort();
  if (!formats.length) return undefined;
  const path = cfg?.path === false ? undefined : posix.normalize(`/${cfg?.path ?? "/usr/share/sbom"}`).replace(/\/+$/, "") || "/";
  return { formats, path, files: cfg?.files ?? true };
}

export interface SbomDoc {
  format: SbomFormat;
  /** File name beside the image: <kind>.spdx.json, <kind>.cdx.json. */
  name: string;
  /** In-image path without the leading slash, when embedded. */
  inImage?: string;
  data: Buffer;
}

/** Where the documents of an image of `kind` go, before they are rendered (the SPDX one excludes them from its verification code). */
export function sbomPlaces(kind: string, opts: SbomOptions): { format: SbomFormat; name: string; inImage?: string }[] {
  return opts.formats.map((format) => {
    const name = `${kind}.${EXT[format]}`;
    return { format, name, inImage: opts.path ? posix.join(opts.path, name).slice(1) : undefined };
  });
}

/**
 * Render the documents: pretty JSON with a final newline, so they diff well.
 * A document's own id (SPDX documentNamespace, CycloneDX serialNumber) must be
 * unique per document: it is the UUID of the rest of its text, filled into the
 * SELF_ID placeholder the renderer left (the id's field comes before any file
 * or package name in the text). One serialization per document: the file
 * lists make it the larger part of an SBOM's cost.
 */
export function renderSboms(inv: Inventory, opts: SbomOptions): SbomDoc[] {
  const places = sbomPlaces(inv.image.kind, opts);
  const embedded = places.flatMap((p) => (p.inImage ? [p.inImage] : []));
  return places.map((p) => {
    const doc = p.format === "spdx" ? renderSpdx(inv, embedded) : renderCycloneDx(inv);
    const data = Buffer.from(`${JSON.stringify(doc, null, 2)}\n`);
    data.write(uuidV5(sha256Hex(data)), data.indexOf(SELF_ID), "latin1"); // as long as the placeholder: in place
    return { ...p, data };
  });
}
