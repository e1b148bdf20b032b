import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../core/atomic.js";
import { stableJson } from "../core/hash.js";
import type { KeyRecord } from "./inputs.js";

/**
 * The input records of each target's last build in this output folder, one
 * file per architecture (out/.kiln/records/<arch>.json). `plan` and `explain`
 * diff against them. One file instead of one per target: a no-op build of 200
 * packages then reads one file and writes nothing.
 */
export class Records {
  private data?: Record<string, KeyRecord>;
  private readonly changed = new Map<string, KeyRecord>();

  constructor(
    private readonly outDir: string,
    private readonly arch: string,
  ) {}

  get file(): string {
    return join(this.outDir, ".kiln", "records", `${this.arch}.json`);
  }

  private async load(): Promise<Record<string, KeyRecord>> {
    this.data ??= JSON.parse(await readFile(this.file, "utf8").catch(() => "{}")) as Record<string, KeyRecord>;
    return this.data;
  }

  async get(id: string): Promise<KeyRecord | undefined> {
    return this.changed.get(id) ?? (await this.load())[id];
  }

  /** Remember a target's record; written by save() only if it differs from the stored one. */
  async set(id: string, record: KeyRecord): Promise<void> {
    const old = (await this.load())[id];
    if (!old || stableJson(old) !== stableJson(record)) this.changed.set(id, record);
  }

  /** Merge our changes into the file as it is now (another kiln may have written it meanwhile). */
  async save(): Promise<void> {
    if (!this.changed.size) return;
    const current = JSON.parse(await readFile(this.file, "utf8").catch(() => "{}")) as Record<string, KeyRecord>;
    for (const [id, r] of this.changed) current[id] = r;
    await writeFileAtomic(this.file, JSON.stringify(current), { sync: false });
    this.data = current;
    this.changed.clear();
  }
}
