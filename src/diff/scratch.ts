import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onCleanup } from "../core/interrupt.js";
import { run } from "../core/exec.js";

/** Temp folders for one diff; all removed at the end (or on Ctrl-C). */
export class Scratch {
  private dirs: string[] = [];
  private readonly off = onCleanup(() => this.dispose());

  async dir(label: string): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), `kiln-diff-${label}-`));
    this.dirs.push(d);
    return d;
  }

  async file(label: string, content: string): Promise<string> {
    const p = join(await this.dir(label), "list");
    await writeFile(p, content);
    return p;
  }

  async dispose(): Promise<void> {
    this.off();
    const dirs = this.dirs.splice(0);
    // extracted trees may hold read-only folders
    for (const d of dirs) {
      await run("chmod", ["-R", "u+rwX", d]).catch(() => undefined);
      await rm(d, { recursive: true, force: true });
    }
  }
}

/** Make an extracted tree readable by us (modes such as 0000 or 0500 are kept by the extractors). */
export async function makeReadable(dir: string): Promise<void> {
  await run("chmod", ["-R", "u+rwX", dir]);
}

/** Read a file of an extracted tree. */
export function readFrom(root: string): (path: string) => Promise<Buffer> {
  return (p) => readFile(join(root, p));
}
