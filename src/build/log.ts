import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { createGzip, type Gzip } from "node:zlib";
import { tempPathFor } from "../core/atomic.js";

/**
 * A step's log: gzipped to LOGDIR/<name>.log.gz (as Pygos keeps them), with
 * the last part kept in memory so a failure can print its tail.
 */
export class StepLog {
  private readonly gz: Gzip;
  private readonly file: WriteStream;
  private readonly tmp: string;
  private recent = "";
  private closed = false;

  private constructor(readonly path: string) {
    this.tmp = tempPathFor(path);
    this.gz = createGzip();
    this.file = createWriteStream(this.tmp);
    this.gz.pipe(this.file);
  }

  static async create(path: string): Promise<StepLog> {
    await mkdir(dirname(path), { recursive: true });
    return new StepLog(path);
  }

  write(chunk: string | Buffer): void {
    if (this.closed) return;
    const s = typeof chunk === "string" ? chunk : chunk.toString("utf8");
    this.recent = (this.recent + s).slice(-16384);
    this.gz.write(chunk);
  }

  line(s: string): void {
    this.write(`${s}\n`);
  }

  tail(lines = 20): string[] {
    const all = this.recent.replace(/\s+$/, "").split("\n");
    return all.slice(Math.max(0, all.length - lines));
  }

  /** Finish the file and move it into place (a log is kept for failures too). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve, reject) => {
      this.file.on("close", resolve).on("error", reject);
      this.gz.end();
    });
    await rename(this.tmp, this.path).catch(() => rm(this.tmp, { force: true }));
  }
}
