import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm, stat } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { tempPathFor } from "../core/atomic.js";
import { run } from "../core/exec.js";
import { fixVdi, fixVhdx } from "./fixups.js";

export interface Format {
  /** File name suffix after "live." */
  ext: string;
  tools: string[];
  convert(raw: string, out: string, seed: string): Promise<void>;
}

function qemuImg(format: string, fix?: (file: string, seed: string) => Promise<void>, options: string[] = []): Omit<Format, "ext"> {
  return {
    tools: ["qemu-img"],
    async convert(raw, out, seed) {
      await run("qemu-img", ["convert", "-q", "-f", "raw", "-O", format, ...options, raw, out]);
      if (fix) await fix(out, seed);
    },
  };
}

const GiB = 1024 ** 3;

/**
 * GCP's image import format: a gzip'd tar holding exactly `disk.raw`, whose
 * size must be a whole number of GiB: the raw disk is padded with zeros (the
 * GPT's backup copy stays where it was; GCP, like every UEFI reader, accepts
 * a disk larger than its table and repairs the backup on first boot).
 * Written by tar-stream with fixed header fields, so it is reproducible.
 */
async function gcpTar(raw: string, out: string): Promise<void> {
  const { default: tarStream } = await import("tar-stream");
  const rawSize = (await stat(raw)).size;
  const size = Math.ceil(rawSize / GiB) * GiB;
  const pack = tarStream.pack();
  const done = pipeline(pack, createGzip({ level: 6 }), createWriteStream(out, { flags: "wx" }));
  await new Promise<void>((resolve, reject) => {
    const entry = pack.entry({ name: "disk.raw", size, mode: 0o644, uid: 0, gid: 0, uname: "", gname: "", mtime: new Date(0), type: "file" }, (err) => (err ? reject(err) : resolve()));
    const src = createReadStream(raw, { highWaterMark: 1 << 20 }).on("error", reject);
    src.pipe(entry, { end: false });
    src.on("end", async () => {
      const zeros = Buffer.alloc(1 << 20);
      for (let left = size - rawSize; left > 0; left -= zeros.length) {
        if (!entry.write(left >= zeros.length ? zeros : zeros.subarray(0, left))) await new Promise<void>((r) => entry.once("drain", () => r()));
      }
      entry.end(Buffer.alloc(0));
    });
  });
  pack.finalize();
  await done;
}

/** Output format → converter (linuxkit's output table): a new format is one entry. */
export const FORMATS: Record<string, Format> = {
  qcow2: { ext: "qcow2", ...qemuImg("qcow2") },
  vdi: { ext: "vdi", ...qemuImg("vdi", fixVdi) },
  parallels: { ext: "parallels", ...qemuImg("parallels") },
  vhdx: { ext: "vhdx", ...qemuImg("vhdx", fixVhdx) },
  gcp: { ext: "img.tar.gz", tools: [], convert: (raw, out) => gcpTar(raw, out) },
};

/** Convert raw → format, under a temp name, renamed when complete. */
export async function convert(format: string, raw: string, out: string, seed: string): Promise<void> {
  const f = FORMATS[format]!;
  const tmp = tempPathFor(out);
  try {
    await f.convert(raw, tmp, seed);
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
