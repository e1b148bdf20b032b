import { KilnError } from "../core/errors.js";

/** Docker Hub's API host and its implicit namespace for one-word names. */
const HUB = "docker.io";
const HUB_API = "registry-1.docker.io";

/** A registry plus an optional namespace: `localhost:5001/lfedge` (EVE's REGISTRY / LINUXKIT_PKG_ORG). */
export interface RegistrySpec {
  /** host[:port] as written (docker.io for Docker Hub). */
  host: string;
  /** Path below the host that repositories go into; "" for none. */
  namespace: string;
}

/** A parsed image reference: host/repository[:tag][@digest]. */
export interface ImageRef {
  host: string;
  repository: string;
  tag?: string;
  digest?: string;
}

const isHost = (part: string) => part.includes(".") || part.includes(":") || part === "localhost";

/** `localhost:5001/lfedge`, `https://ghcr.io/org`, `ghcr.io` → host and namespace. */
export function parseRegistry(spec: string): RegistrySpec {
  const s = spec.trim().replace(/^[a-z]+:\/\//, "").replace(/\/+$/, "");
  if (!s) throw new KilnError("E_USAGE", "empty registry");
  const [first, ...rest] = s.split("/");
  if (!isHost(first!)) return { host: HUB, namespace: s };
  return { host: first!, namespace: rest.join("/") };
}

/** Parse an image reference the way docker does (docker.io and library/ for short names). */
export function parseImageRef(ref: string): ImageRef {
  let rest = ref.trim();
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new KilnError("E_USAGE", `'${ref}': the digest must be sha256:<64 hex>`);
  }
  const parts = rest.split("/");
  let host = HUB;
  if (parts.length > 1 && isHost(parts[0]!)) host = parts.shift()!;
  let last = parts.pop() ?? "";
  let tag: string | undefined;
  const colon = last.indexOf(":");
  if (colon >= 0) {
    tag = last.slice(colon + 1);
    last = last.slice(0, colon);
  }
  parts.push(last);
  if (host === HUB && parts.length === 1) parts.unshift("library");
  const repository = parts.join("/");
  if (!/^[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*$/.test(repository)) {
    throw new KilnError("E_USAGE", `'${ref}' is not a valid image reference`, { hint: "write [HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST]" });
  }
  if (tag !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(tag)) throw new KilnError("E_USAGE", `'${ref}': '${tag}' is not a valid tag`);
  if (!tag && !digest) tag = "latest";
  return { host, repository, tag, digest };
}

export function formatRef(r: ImageRef): string {
  return `${r.host}/${r.repository}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}

/** The host the HTTP API is on (Docker Hub's differs from its name). */
export function apiHost(host: string): string {
  return host === HUB ? HUB_API : host;
}

/**
 * The repository a package goes to: `<namespace>/<name>` when the registry
 * names a namespace (localhost:5001/lfedge → lfedge/<name>), else the store
 * ref's own `<org>/<name>`.
 */
export function packageRepository(reg: RegistrySpec, storeRef: string): { repository: string; tag: string } {
  const colon = storeRef.lastIndexOf(":");
  const name = storeRef.slice(0, colon);
  const tag = storeRef.slice(colon + 1);
  const base = name.split("/").pop()!;
  return { repository: reg.namespace ? `${reg.namespace}/${base}` : name, tag };
}

/** Plain HTTP for loopback registries, or when asked (kiln.yml registry.insecure, KILN_REGISTRY_INSECURE=1). */
export function defaultInsecure(host: string): boolean {
  const h = host.replace(/:\d+$/, "");
  return h === "localhost" || h === "127.0.0.1" || h === "[::1]" || h.endsWith(".localhost");
}
