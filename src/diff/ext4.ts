import { readlink } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../core/exec.js";
import { fromStMode } from "./modes.js";
import { makeReadable, readFrom, type Scratch } from "./scratch.js";
import type { Entry, Tree } from "./types.js";

const q = (p: string) => `"${p.replace(/(["\\])/g, "\\$1")}"`;

/** Run debugfs commands in one session; returns each command's output. */
async function debugfs(dev: string, cmds: string[], scratch: Scratch): Promise<string[]> {
  if (!cmds.length) return [];
  const file = await scratch.file("dbg", cmds.join("\n") + "\n");
  const { stdout } = await run("debugfs", ["-f", file, dev]);
  return stdout.split(/^debugfs: .*$/m).slice(1);
}

/**
 * An ext2/3/4 file system (at `offset` in `img`), read with debugfs: the tree
 * and each entry's mode and owners from `ls -p` (one batched session per
 * directory level), device numbers from `stat`, contents from `rdump` (which
 * does not apply owners, so they come from the listing), link targets from the
 * dumped symlinks. File-system facts (UUID, label, features) from `dumpe2fs -h`.
 */
export async function openExt4(img: string, offset: number, scratch: Scratch): Promise<Tree> {
  const dev = offset ? `${img}?offset=${offset}` : img;
  const entries = new Map<string, Entry>();
  let level = ["/"];
  while (level.length) {
    const outs = await debugfs(dev, level.map((d) => `ls -p ${q(d)}`), scratch);
    const next: string[] = [];
    level.forEach((dir, i) => {
      for (const line of (outs[i] ?? "").split("\n")) {
        const f = line.split("/");
        if (f.length < 8 || f[0] !== "") continue;
        const name = f.slice(5, f.length - 2).join("/");
        if (!name || name === "." || name === ".." || f[1] === "0") continue;
        const { type, mode } = fromStMode(parseInt(f[2]!, 8));
        const p = dir === "/" ? `/${name}` : `${dir}/${name}`;
        entries.set(p, { type, mode, uid: Number(f[3]), gid: Number(f[4]), size: type === "file" ? Number(f[f.length - 2]) : 0 });
        if (type === "dir") next.push(p);
      }
    });
    level = next;
  }
  const devices = [...entries].filter(([, e]) => e.type === "char" || e.type === "block");
  const stats = await debugfs(dev, devices.map(([p]) => `stat ${q(p)}`), scratch);
  devices.forEach(([, e], i) => {
    const m = /Device major\/minor number: (\d+):(\d+)/.exec(stats[i] ?? "");
    if (m) e.dev = [Number(m[1]), Number(m[2])];
  });
  const dest = await scratch.dir("ext4");
  await run("debugfs", ["-R", `rdump / ${q(dest)}`, dev]);
  await makeReadable(dest);
  for (const [p, e] of entries) if (e.type === "symlink") e.link = await readlink(join(dest, p)).catch(() => "?");
  const meta: Record<string, string> = {};
  const { stdout } = await run("dumpe2fs", ["-h", dev]);
  for (const [key, label] of [["Filesystem volume name", "label"], ["Filesystem UUID", "uuid"], ["Filesystem features", "features"], ["Block size", "block size"]] as const) {
    const m = new RegExp(`^${key}:\\s*(.*)$`, "m").exec(stdout);
    if (m) meta[label] = m[1]!.trim();
  }
  return { kind: "ext4", entries, read: readFrom(dest), meta };
}
