import { execa } from "execa";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { indexTarCached, indexTarSync } from "../../src/compose/tarindex.js";
import { tempDir } from "../helpers/kiln.js";

/** A tar made by GNU tar (a file, a long name in a pax header, a symlink, a hard link, a folder), stored as a store blob is: under its sha256. */
async function blob(dir: string): Promise<string> {
  const src = join(dir, "src");
  const long = `${"d".repeat(60)}/${"f".repeat(80)}`;
  await mkdir(join(src, "d".repeat(60)), { recursive: true });
  await writeFile(join(src, "hello"), "hello\n");
  await writeFile(join(src, long), "a long name\n");
  await execa("ln", ["-s", "hello", join(src, "sym")]);
  await execa("ln", [join(src, "hello"), join(src, "hard")]);
  const tar = join(dir, "layer.tar");
  await execa("tar", ["--format=pax", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "-cf", tar, "-C", src, "."]);
  const hex = createHash("sha256").update(await readFile(tar)).digest("hex");
  await mkdir(join(dir, "blobs/sha256"), { recursive: true });
  const path = join(dir, "blobs/sha256", hex);
  await rename(tar, path);
  return path;
}

describe("the tar index cache (kiln/tar-index)", () => {
  it("gives what reading the headers gives, from one small file per blob; a damaged one is read again", async () => {
    const dir = await tempDir();
    const path = await blob(dir);
    const cache = join(dir, "tar-index");
    const fresh = indexTarSync(path);
    expect(fresh.map((e) => [e.name, e.type])).toEqual(expect.arrayContaining([["./hard", "file"], ["./sym", "symlink"], ["./hello", "link"], [`./${"d".repeat(60)}/${"f".repeat(80)}`, "file"]]));
    expect(await indexTarCached(cache, path)).toEqual(fresh);
    const name = `${path.split("/").pop()}.json`;
    expect(await readdir(cache)).toEqual([name]);
    // from the cache now: the blob's headers are not read (a blob never changes, so this is safe)
    const cached = JSON.parse(await readFile(join(cache, name), "utf8")) as { rows: unknown[][] };
    cached.rows[0]![0] = "./from-the-cache";
    await writeFile(join(cache, name), JSON.stringify(cached));
    expect((await indexTarCached(cache, path))[0]!.name).toBe("./from-the-cache");
    // damaged: indexed again and rewritten
    await writeFile(join(cache, name), "{not json");
    expect(await indexTarCached(cache, path)).toEqual(fresh);
    expect(JSON.parse(await readFile(join(cache, name), "utf8"))).toMatchObject({ v: 1 });
    // a tar inside the blob has a cache file of its own; a file that is not a blob has none
    const inner = fresh.find((e) => e.name === "./sym")!;
    expect(await indexTarCached(cache, path, 0, inner.offset - 512)).toEqual(indexTarSync(path, 0, inner.offset - 512));
    await writeFile(join(dir, "plain.tar"), await readFile(path));
    expect(await indexTarCached(cache, join(dir, "plain.tar"))).toEqual(fresh);
    expect((await readdir(cache)).sort()).toEqual([name, `${name.slice(0, -5)}-0-${inner.offset - 512}.json`].sort());
  });
});
