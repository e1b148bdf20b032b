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

/**
 * GCP's image import format: a gzip'd tar holding exactly `disk.raw`
 * (oldgnu, sparse-unaware readers accept it). Written by tar-stream with fixed
 * header fields, so it is reproducible; GCP wants the raw size to be a whole
 * number of GiB, which the caller's layout decides.
 */
async function gcpTar(raw: string, out: string): Promise<void> {
  const { default: tarStream } = await import("tar-stream");
  const size = (await stat(raw)).size;
  const pack = tarStream.pack();
  const done = pipeline(pack, createGzip({ level: 6 }), createWriteStream(out, { flags: "wx" }));
  await new Promise<void>((resolve, reject) => {
    const entry = pack.entry({ name: "disk.raw", size, mode: 0o644, uid: 0, gid: 0, uname: "", gname: "", mtime: new Date(0), type: "file" }, (err) => (err ? reject(err) : resolve()));
    createReadStream(raw, { highWaterMark: 1 << 20 }).on("error", reject).pipe(entry);
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
