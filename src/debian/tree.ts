import { open } from "node:fs/promises";
import type { LayerEntry } from "../build/layer.js";
import { KilnError } from "../core/errors.js";

/**
 * The image a debian package builds, as kiln installs it: in-image absolute
 * paths ("/usr/bin/x") to layer entries, with the package that put each one
 * there. Nothing is written to disk; bodies stay where the installer put them
 * (memory or the step's scratch folder).
 */
export interface Node {
  entry: LayerEntry;
  /** Files that are hard links of each other share a group. */
  group?: number;
  /** The package that installed it, or "kiln:<step>" for what kiln made in place of a maintainer script. */
  owner: string;
}

/** "/a/b" + "c" → "/a/b/c". */
export const joinPath = (dir: string, name: string) => (dir === "/" ? `/${name}` : `${dir}/${name}`);
export const dirName = (p: string) => p.slice(0, p.lastIndexOf("/")) || "/";
export const baseName = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/** Lexical normalisation of an absolute path; undefined when `..` would climb above "/". */
export function normalizePath(p: string): string | undefined {
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (!seg || seg === ".") continue;
    if (seg === "..") {
      if (!out.length) return undefined;
      out.pop();
    } else out.push(seg);
  }
  return `/${out.join("/")}`;
}

/** The relative symlink target that leads from a link at `from` to `to` (both absolute, normalised). */
export function relativeTarget(from: string, to: string): string {
  const a = dirName(from).split("/").filter(Boolean);
  const b = to.split("/").filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => ".."), ...b.slice(i)].join("/") || ".";
}

const MAX_HOPS = 40;

export class Tree {
  /** Every directory the packages ship (also those `paths` leaves out: they are written when something under them is kept). */
  readonly dirs = new Map<string, Node>();
  /** Files, symlinks, hard links and devices that are kept. */
  readonly files = new Map<string, Node>();
  /** Every symlink installed, also those `paths` leaves out: later entries are resolved through them. */
  readonly links = new Map<string, { target: string; owner: string }>();

  /**
   * Resolve `path` as the kernel would inside a chroot of the image:
   * symlinks are followed (absolute targets from the image root), `..` at the
   * root stays there. `followLast: false` leaves a final symlink alone.
   * Undefined on a symlink loop.
   */
  resolve(path: string, followLast = true): string | undefined {
    const hops = { n: 0 };
    return this.walk(path, followLast, hops);
  }

  private walk(path: string, followLast: boolean, hops: { n: number }): string | undefined {
    const parts = path.split("/").filter((s) => s && s !== ".");
    let cur = "/";
    for (let i = 0; i < parts.length; i++) {
      const seg = parts[i]!;
      if (seg === "..") {
        cur = dirName(cur);
        continue;
      }
      const next = joinPath(cur, seg);
      const link = this.links.get(next);
      if (link && (followLast || i < parts.length - 1)) {
        if (++hops.n > MAX_HOPS) return undefined;
        const r = this.walk(link.target.startsWith("/") ? link.target : joinPath(cur, link.target), true, hops);
        if (r === undefined) return undefined;
        cur = r;
      } else cur = next;
    }
    return cur;
  }

  /**
   * Where an entry of package `pkg` is installed. dpkg writes through
   * symlinked directories; kiln does so only for relative symlinks that stay
   * inside the image (`bin -> usr/bin`), and refuses, with E_DEBIAN_PATH, an
   * entry below an absolute symlink (`etc/x -> /tmp`, then `etc/x/evil`: a
   * naive extraction on the host writes /tmp/evil) or below a relative one
   * that climbs out of the root. The layer never has an entry below a symlink.
   */
  installPath(path: string, pkg: string, entryName: string): string {
    const hops = { n: 0 };
    const parent = this.strictDir(dirName(path), pkg, entryName, hops);
    return joinPath(parent, baseName(path));
  }

  private strictDir(dir: string, pkg: string, entryName: string, hops: { n: number }): string {
    const refuse = (why: string) =>
      new KilnError("E_DEBIAN_PATH", `${pkg}: the entry ${entryName} ${why}`, {
        hint: "the package is broken or malicious; kiln does not install it (exclude it, or pick another version)",
      });
    let cur = "/";
    for (const seg of dir.split("/").filter(Boolean)) {
      const next = joinPath(cur, seg);
      const link = this.links.get(next);
      if (!link) {
        cur = next;
        continue;
      }
      if (++hops.n > MAX_HOPS) throw refuse(`goes through a symlink loop at ${next}`);
      const from = link.owner === pkg ? "" : ` (from ${link.owner})`;
      if (link.target.startsWith("/")) throw refuse(`would be written through the absolute symlink ${next} -> ${link.target}${from}`);
      const target = normalizePath(joinPath(cur, link.target));
      if (target === undefined) throw refuse(`would be written through the symlink ${next} -> ${link.target}${from}, which leaves the root`);
      cur = this.strictDir(target, pkg, entryName, hops);
    }
    return cur;
  }

  /** The direct children of directory `dir` (files, links and directories), sorted. */
  children(dir: string): string[] {
    const prefix = dir === "/" ? "/" : `${dir}/`;
    const out = new Set<string>();
    for (const m of [this.files, this.dirs]) {
      for (const p of m.keys()) if (p.startsWith(prefix) && p.length > prefix.length && !p.includes("/", prefix.length)) out.add(p);
    }
    return [...out].sort();
  }

  /** The node at `path` after resolving symlinks (chroot semantics), or undefined. */
  lookup(path: string): { path: string; node: Node } | undefined {
    const p = this.resolve(path);
    if (p === undefined) return undefined;
    const node = this.files.get(p) ?? this.dirs.get(p);
    return node ? { path: p, node } : undefined;
  }
}

/** The bytes of a file node, from memory or the scratch folder. */
export async function readBody(node: Node, offset = 0, length?: number): Promise<Buffer> {
  const src = node.entry.source;
  if (src === undefined) return Buffer.alloc(0);
  if (Buffer.isBuffer(src)) return src.subarray(offset, length === undefined ? undefined : offset + length);
  const fh = await open(src, "r");
  try {
    const size = (await fh.stat()).size;
    const n = Math.max(0, Math.min(length ?? size, size - offset));
    const buf = Buffer.alloc(n);
    await fh.read(buf, 0, n, offset);
    return buf;
  } finally {
    await fh.close();
  }
}
