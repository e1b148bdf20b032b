import { createHash } from "node:crypto";
import { sha256Hex } from "../../core/hash.js";

/**
 * Identifiers for SBOMs, all derived from content: nothing random, nothing
 * from the clock, so two builds of the same inputs write the same bytes.
 */

/** Where a document's own UUID goes until the rest of the document is known (see renderSboms): a UUID-shaped token no name contains. */
export const SELF_ID = "00000000-0000-5000-8000-6b696c6e5e1f";

/** kiln's namespace for name-based UUIDs (itself the v5 UUID of "kiln" in the URL namespace of RFC 4122). */
const KILN_NS = "53f8b315-3f19-5a81-9257-9fda522dfe5c";

/** An RFC 4122 version-5 (SHA-1, name-based) UUID of `name` in kiln's namespace. */
export function uuidV5(name: string, namespace = KILN_NS): string {
  const ns = Buffer.from(namespace.replace(/-/g, ""), "hex");
  const h = createHash("sha1").update(ns).update(name).digest().subarray(0, 16);
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** An SPDX element id: `SPDXRef-` and letters, digits, `.` and `-` only; a short hash keeps ids unique when names clash after cleaning. */
export function spdxId(kind: string, name: string, unique = name): string {
  const clean = name.replace(/[^A-Za-z0-9.-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 60) || "x";
  return `SPDXRef-${kind}-${clean}-${sha256Hex(unique).slice(0, 12)}`;
}

/**
 * Percent-encode a purl component: everything but ASCII letters, digits and
 * `.-_~` is encoded; `:` stays as it is (the purl spec: unambiguous everywhere).
 */
function purlEncode(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%3A/g, ":");
}

/** A package URL (https://github.com/package-url/purl-spec): qualifiers sorted by key, empty ones left out. */
export function purl(type: string, namespace: string | undefined, name: string, version?: string, qualifiers: Record<string, string | undefined> = {}): string {
  const ns = namespace ? `${namespace.split("/").map(purlEncode).join("/")}/` : "";
  const q = Object.entries(qualifiers)
    .filter((e): e is [string, string] => !!e[1])
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${purlEncode(v)}`)
    .join("&");
  return `pkg:${type}/${ns}${purlEncode(name)}${version ? `@${purlEncode(version)}` : ""}${q ? `?${q}` : ""}`;
}

/** pkg:deb/debian/NAME@VERSION?arch=ARCH */
export function debPurl(name: string, version: string, arch: string): string {
  return purl("deb", "debian", name, version, { arch });
}

/** pkg:oci/NAME@sha256:…: an OCI image by its manifest digest (the name is the repository's last segment, lower case, as the purl spec says). */
export function ociPurl(repository: string, digest: string, qualifiers: Record<string, string | undefined> = {}): string {
  const name = repository.split("/").pop()!.toLowerCase();
  return purl("oci", undefined, name, digest, qualifiers);
}

/** SOURCE_DATE_EPOCH as the UTC date-time both formats want, to the second. */
export function isoTime(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}
