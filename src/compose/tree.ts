import type { TarIndexEntry } from "./tarindex.js";

/** Where an entry's bytes come from: a range of a layer file, or bytes kiln made. */
export type Content = { file: string; offset: number; size: number } | { data: Buffer };

export interface Node {
  type: TarIndexEntry["type"];
  mode: number;
  uid: number;
  gid: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, string>;
  content?: Content;
  /** Which layer application added it; whiteouts only remove what earlier layers added. */
  seq: number;
}

/** What makes a path need more than a trailing slash dropped: a leading slash, "//", a "." or ".." segment. */
const UNCLEAN = /^\/|\/\/|(?:^|\/)\.\.?(?:\/|$)/;

/** Normalize a path from a tar or a spec to the relative form kept in the tree ("etc/motd"). */
export function normal(p: string): string {
  // tar member names are almost always clean ("usr/lib/x", "usr/lib/"): no split and join for them
  if (!UNCLEAN.test(p)) return p.endsWith("/") ? p.slice(0, -1) : p;
  const parts: string[] = [];
  for (const part of p.split("/")) {
    if (!part || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return parts.join("/");
}

export function join(prefix: string, p: string): string {
  const n = normal(p);
  return prefix ? (n ? `${prefix}/${n}` : prefix) : n;
}

/**
 * The file tree of an image being composed: layers are applied in order with
 * OCI whiteout semantics, later entries replace earlier ones, and nothing is
 * read or written until the tree is serialized.
 */
export class Tree {
  readonly nodes = new Map<string, Node>();
  private seq = 0;

  /** Start a new layer application; returns its sequence number. */
  nextLayer(): number {
    return ++this.seq;
  }

  private removeSubtree(path: string, before: number, includeSelf: boolean): void {
    const pre = path ? `${path}/` : "";
    for (const [k, n] of this.nodes) {
      if (n.seq >= before) continue;
      if ((includeSelf && k === path) || k.startsWith(pre)) this.nodes.delete(k);
    }
  }

  /** Remove an entry and everything under it. */
  drop(path: string): void {
    this.removeSubtree(path, Infinity, true);
  }

  set(path: string, node: Omit<Node, "seq">, seq = this.seq): void {
    this.put(path, { ...node, seq });
  }

  /** `set` for a node made here, with its seq in it (no copy: thousands per layer). */
  private put(path: string, node: Node): void {
    const old = this.nodes.get(path);
    // a directory entry over an existing directory updates its metadata only (as unpacking does); over anything else it replaces
    if (old && old.type === "directory" && node.type !== "directory") this.removeSubtree(path, Infinity, false);
    this.nodes.set(path, node);
  }

  /** Apply one layer's entries under `prefix` ("" for the root). */
  applyLayer(prefix: string, file: string, entries: TarIndexEntry[]): void {
    const seq = this.nextLayer();
    for (const e of entries) {
      const rel = normal(e.name);
      if (!rel) continue;
      const slash = rel.lastIndexOf("/");
      const dir = slash === -1 ? "" : rel.slice(0, slash);
      const base = rel.slice(slash + 1);
      if (base === ".wh..wh..opq") {
        this.removeSubtree(join(prefix, dir), seq, false);
        continue;
      }
      if (base.startsWith(".wh.")) {
        this.removeSubtree(join(prefix, dir ? `${dir}/${base.slice(4)}` : base.slice(4)), seq, true);
        continue;
      }
      this.put(prefix ? `${prefix}/${rel}` : rel, {
        type: e.type,
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        linkname: e.type === "link" ? join(prefix, e.linkname) : e.type === "symlink" ? e.linkname : undefined,
        devmajor: e.devmajor,
        devminor: e.devminor,
        xattrs: e.xattrs,
        content: e.type === "file" ? { file, offset: e.offset, size: e.size } : undefined,
        seq,
      });
    }
  }

  /** The files the entries' bytes are read from (layer blobs, mostly). */
  sources(): Set<string> {
    const files = new Set<string>();
    for (const n of this.nodes.values()) if (n.content && "file" in n.content) files.add(n.content.file);
    return files;
  }

  /** Read-only view of a file's bytes location (following hard links), for passwd lookups and kernel files. */
  resolveFile(path: string): Node | undefined {
    let n = this.nodes.get(path);
    for (let i = 0; n && n.type === "link" && i < 16; i++) n = this.nodes.get(n.linkname ?? "");
    return n && n.type === "file" ? n : undefined;
  }
}
