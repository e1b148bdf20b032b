/** One file-system object, whatever image it came from. Paths are absolute ("/etc/hv"). */
export interface Entry {
  type: "file" | "dir" | "symlink" | "char" | "block" | "fifo" | "socket";
  /** Permission bits (0o7777); absent where the format has none (FAT). */
  mode?: number;
  uid?: number;
  gid?: number;
  size: number;
  link?: string;
  dev?: [number, number];
  /** Extended attributes, where the reader can see them (tar pax records). */
  xattrs?: Record<string, string>;
}

/** A file system opened for comparison: its entries, a way to read a file's bytes, cheap fs-level facts. */
export interface Tree {
  /** squashfs | ext4 | fat | tar */
  kind: string;
  entries: Map<string, Entry>;
  /** The content of a regular file (for hashing). */
  read(path: string): Promise<Buffer>;
  /** File-system-level metadata (superblock facts) worth comparing. */
  meta: Record<string, string>;
}

export interface FieldChange {
  a: string | number | null;
  b: string | number | null;
}

export interface Changed {
  path: string;
  fields: Record<string, FieldChange>;
}

export interface PartitionChange {
  name: string;
  change: "added" | "removed" | "changed";
  fields: Record<string, FieldChange>;
}

export interface DiffResult {
  /** What A and B are: tar, squashfs, ext4, fat, gpt (a raw or converted disk). */
  kind: string;
  added: string[];
  removed: string[];
  changed: Changed[];
  partitions: PartitionChange[];
  /** File-system-level differences: superblock facts; `where` is "" for a single image, the partition name on disks. */
  filesystem: { where: string; fields: Record<string, FieldChange> }[];
}

export interface DiffOptions {
  /** Globs on absolute in-image paths; a glob matching a directory hides everything under it. */
  ignore: string[];
  /** "eve": compare as EVE's tools/rootfs-diff.sh does (see docs/diff.md). */
  preset?: "eve";
}

export function emptyResult(kind: string): DiffResult {
  return { kind, added: [], removed: [], changed: [], partitions: [], filesystem: [] };
}
