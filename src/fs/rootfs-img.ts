
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { tempPathFor } from "../core/atomic.js";
import { KilnError } from "../core/errors.js";
import { run, spawnGroup } from "../core/exec.js";
import { sha256Hex } from "../core/hash.js";
import { findTool } from "../core/tools.js";
import { derivedGuid } from "../disk/gpt.js";
import { indexTar } from "../compose/tarindex.js";

export interface RootfsImgOptions {
  format: string;
  /** sha256 of rootfs.tar: the file system UUID is derived from it. */
  tarSha256: string;
  mtime: number;
  /** squashfs compression (default gzip: decompressible by every kernel and GRUB). */
  compression?: string;
  /** The compressor's level (gzip 1-9, zstd 1-22; mksquashfs -Xcompression-level). */
  compressionLevel?: number;
  /** Bytes; the payload is checked before any image is written. */
  maxSize?: number;
  jobs: number;
  /** Scratch space (ext4 and erofs unpack the tar under fakeroot). */
  workDir: string;
  label?: string;
}

interface Writer {
  tools: string[];
  write(tar: string, out: string, o: RootfsImgOptions): Promise<void>;
}

/**
 * squashfs straight from the tar stream (mksquashfs -tar): owners, modes and
 * device nodes come from the tar headers, nothing is unpacked, and with fixed
 * -mkfs-time/-all-time the image is reproducible by construction.
 */
const squashfs: Writer = {
  tools: ["mksquashfs"],
  async write(tar, out, o) {
    const comp = o.compression ?? "gzip";
    const args = [
      "-", out, "-tar", "-noappend", "-quiet", "-no-progress",
      "-comp", comp,
      ...(o.compressionLevel !== undefined ? ["-Xcompression-level", String(o.compressionLevel)] : []),
      "-mkfs-time", String(o.mtime), "-all-time", String(o.mtime),
      "-root-mode", "0755", "-root-uid", "0", "-root-gid", "0",
      "-processors", String(Math.max(1, o.jobs)),
    ];
    await runWithStdin("mksquashfs", args, tar);
  },
};

/**
 * ext4 via mkfs.ext4 -d (e2fsprogs 1.47.0 cannot read a tar): the tar is
 * unpacked under fakeroot, so owners and device nodes live only in fakeroot's
 * database, and mkfs.ext4 runs in the same fakeroot session. UUID and hash
 * seed are derived from the tar; E2FSPROGS_FAKE_TIME fixes the superblock
 * times; inode ctime/atime (which mkfs copies from the unpacked files) are then
 * set to the epoch with one batched debugfs run.
 */
const ext4: Writer = {
  tools: ["fakeroot", "mkfs.ext4", "debugfs", "tar"],
  async write(tar, out, o) {
    const dir = join(o.workDir, "ext4-root");
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const entries = await indexTar(tar);
    const payload = entries.reduce((n, e) => n + e.size + 4096, 0);
    const mib = Math.ceil((payload * 1.2 + 24 * 2 ** 20) / 2 ** 20);
    const uuid = derivedGuid(sha256Hex(`ext4:${o.tarSha256}`)).toLowerCase();
    const script = [
      "set -e",
      `tar -xpf "$1" -C "$2" --numeric-owner --same-owner`,
      `mkfs.ext4 -q -F -d "$2" -U ${uuid} -E hash_seed=${uuid},root_owner=0:0 -L ${o.label ?? "rootfs"} -b 4096 -I 256 -O ^has_journal "$3" ${mib}M`,
    ].join("\n");
    await run("fakeroot", ["--", "sh", "-c", script, "sh", tar, dir, out], { env: { ...envNow(), E2FSPROGS_FAKE_TIME: String(o.mtime) } });
    const cmds = ["/", ...entries.map((e) => `/${e.name.replace(/^\.?\/+/, "").replace(/\/+$/, "")}`)]
      .filter((p, i, a) => a.indexOf(p) === i)
      .flatMap((p) => ["atime", "ctime", "crtime"].map((f) => `sif "${p.replace(/"/g, '\\"')}" ${f} @${o.mtime}`));
    const cmdFile = join(o.workDir, "debugfs.cmds");
    const { writeFile } = await import("node:fs/promises");
    await writeFile(cmdFile, cmds.join("\n") + "\n");
    await run("debugfs", ["-w", "-f", cmdFile, out], { env: { ...envNow(), E2FSPROGS_FAKE_TIME: String(o.mtime) } });
    await rm(dir, { recursive: true, force: true });
  },
};

/** erofs (optional): erofs-utils 1.5 cannot read a tar either, so the same fakeroot unpack. */
const erofs: Writer = {
  tools: ["fakeroot", "mkfs.erofs", "tar"],
  async write(tar, out, o) {
    const dir = join(o.workDir, "erofs-root");
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const uuid = derivedGuid(sha256Hex(`erofs:${o.tarSha256}`)).toLowerCase();
    const script = `set -e\ntar -xpf "$1" -C "$2" --numeric-owner --same-owner\nmkfs.erofs --quiet -T ${o.mtime} -U ${uuid} "$3" "$2"`;
    await run("fakeroot", ["--", "sh", "-c", script, "sh", tar, dir, out]);
    await rm(dir, { recursive: true, force: true });
  },
};

/** Format name → writer (linuxkit's output table idea): a new format is one entry. */
export const ROOTFS_WRITERS: Record<string, Writer> = { squashfs, ext4, erofs };

function envNow(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
}

/**
 * Run a tool with a file as its standard input, handed over as a file
 * descriptor (as the shell's `<` does): the bytes go from the page cache to the
 * tool without passing through node.
 */
async function runWithStdin(tool: string, args: string[], file: string): Promise<void> {
  const path = await findTool(tool);
  const { open } = await import("node:fs/promises");
  const fh = await open(file, "r");
  try {
    let output = "";
    const code = await spawnGroup(path, args, { stdin: fh.fd, onOutput: (b) => (output = (output + b.toString("utf8")).slice(-16384)) });
    if (code !== 0) {
      throw new KilnError("E_TOOL_FAILED", `${tool} failed with exit code ${code}`, {
        command: `${tool} ${args.join(" ")} < ${file}`,
        exitCode: code,
        details: output.trim().split("\n").slice(-20),
      });
    }
  } finally {
    await fh.close();
  }
}

/** The payload of a tar, summed per top-level area, for the size budget's error. */
export async function largestContributors(tar: string, n = 5): Promise<{ path: string; bytes: number }[]> {
  const sums = new Map<string, number>();
  for (const e of await indexTar(tar)) {
    const parts = e.name.replace(/^\.?\/+/, "").split("/");
    const key = parts[0] === "containers" ? parts.slice(0, 3).join("/") : parts.slice(0, 2).join("/");
    sums.set(key, (sums.get(key) ?? 0) + e.size);
  }
  return [...sums].map(([path, bytes]) => ({ path, bytes })).sort((a, b) => b.bytes - a.bytes).slice(0, n);
}

function mb(n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MiB`;
}

/** rootfs.tar → rootfs.img; budget checked first (on the payload) and last (on the image). */
export async function makeRootfsImg(tar: string, out: string, o: RootfsImgOptions): Promise<{ size: number }> {
  const writer = ROOTFS_WRITERS[o.format];
  if (!writer) throw new KilnError("E_BAD_VARIANT", `ROOTFS_FORMAT=${o.format} is not one of: ${Object.keys(ROOTFS_WRITERS).join(", ")}`);
  for (const t of writer.tools) await findTool(t);
  const overBudget = async (what: string, size: number) => {
    const top = await largestContributors(tar);
    return new KilnError("E_ROOTFS_TOO_BIG", `${what} is ${mb(size)}, over the budget of ${mb(o.maxSize!)}`, {
      details: top.map((t) => `${mb(t.bytes).padStart(11)}  ${t.path}`),
      hint: "the largest contributors are listed; raise images.maxsize (or ROOTFS_MAXSIZE) or shrink them",
    });
  };
  if (o.maxSize) {
    const payload = (await indexTar(tar)).reduce((n, e) => n + e.size, 0);
    if (payload > o.maxSize) throw await overBudget("the root file system's content", payload);
  }
  await mkdir(o.workDir, { recursive: true });
  const tmp = tempPathFor(out);
  try {
    await writer.write(tar, tmp, o);
    const size = (await stat(tmp)).size;
    if (o.maxSize && size > o.maxSize) throw await overBudget(`rootfs.img (${o.format})`, size);
    await rename(tmp, out);
    return { size };
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

