import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import tar from "tar-stream";

export interface TarEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname?: string | null;
  body: string;
}

/** Read a tar file's entries (headers and small bodies) with tar-stream, as a real reader would. */
export async function readTar(path: string): Promise<TarEntry[]> {
  const ex = tar.extract();
  Readable.from(await readFile(path)).pipe(ex);
  const out: TarEntry[] = [];
  for await (const e of ex) {
    const chunks: Buffer[] = [];
    for await (const c of e) chunks.push(c as Buffer);
    const h = e.header;
    out.push({ name: h.name, type: h.type ?? "file", mode: h.mode ?? 0, uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: (h.mtime?.getTime() ?? 0) / 1000, linkname: h.linkname, body: Buffer.concat(chunks).toString("utf8") });
  }
  return out;
}

interface Index { manifests: { digest: string; annotations?: Record<string, string> }[] }

/** The layer tar of a package image in a store, found through index.json → manifest. */
export async function layerOf(store: string, pkg: string): Promise<string> {
  const idx = JSON.parse(await readFile(join(store, "index.json"), "utf8")) as Index;
  const m = idx.manifests.find((x) => x.annotations?.["org.opencontainers.image.ref.name"]?.startsWith(`kiln/${pkg}:`));
  if (!m) throw new Error(`no image for ${pkg} in ${store}`);
  const blob = (d: string) => join(store, "blobs", "sha256", d.slice(7));
  const manifest = JSON.parse(await readFile(blob(m.digest), "utf8")) as { layers: { digest: string }[] };
  return blob(manifest.layers[0]!.digest);
}

export async function refs(store: string): Promise<string[]> {
  const idx = JSON.parse(await readFile(join(store, "index.json"), "utf8")) as Index;
  return idx.manifests.map((m) => m.annotations?.["org.opencontainers.image.ref.name"] ?? "").sort();
}
