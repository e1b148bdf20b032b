import { execa } from "execa";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, writeSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { sha256Follow } from "../../src/core/hash.js";
import { native } from "../../src/core/native.js";
import { indexTar } from "../../src/compose/tarindex.js";
import { Tree } from "../../src/compose/tree.js";
import { writeTreeTar } from "../../src/compose/write-tar.js";
import { tempDir } from "../helpers/kiln.js";

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/**
 * A "layer" file holding bodies at known offsets, and a tree whose files point
 * into it: sizes on both sides of the native writer's in-kernel copy threshold
 * (64 KiB), bodies bigger than its parts (4 MiB) and one bigger than the
 * writer's batches (8 MiB, so cut across two), bytes kiln made that are bigger
 * than a batch's own pieces (an SBOM of a large image), a symlink, a hard link,
 * a directory.
 */
async function fixture(dir: string, layerDir = dir) {
  const bodies: Record<string, Buffer> = {
    "small.txt": Buffer.from("hello\n"),
    "edge.bin": randomBytes(64 << 10),
    "medium.bin": randomBytes(70_001),
    "large.bin": randomBytes((3 << 20) + 17),
    // more large bodies in a row than the writer copies at once (it waits, then goes on past them)
    "large2.bin": randomBytes((2 << 20) + 1),
    "large3.bin": randomBytes(1 << 20),
    "large4.bin": randomBytes((5 << 20) + 511),
    "huge.bin": randomBytes((9 << 20) + 3),
  };
  const layer = join(layerDir, "layer.bin");
  const fd = openSync(layer, "w");
  const tree = new Tree();
  const seq = tree.nextLayer();
  let offset = 4096; // not at the start: ranges are read at their offsets
  for (const [name, body] of Object.entries(bodies)) {
    writeSync(fd, body, 0, body.length, offset);
    tree.set(`data/${name}`, { type: "file", mode: 0o644, uid: 0, gid: 0, content: { file: layer, offset, size: body.length } }, seq);
    offset += body.length + 333;
  }
  closeSync(fd);
  bodies["made.json"] = Buffer.from(JSON.stringify({ files: Array.from({ length: 40_000 }, (_, i) => `file-${i}`) }));
  tree.set("data/made.json", { type: "file", mode: 0o600, uid: 5, gid: 7, content: { data: bodies["made.json"] } }, seq);
  tree.set("data/link", { type: "symlink", mode: 0o777, uid: 0, gid: 0, linkname: "large.bin" }, seq);
  tree.set("data/zz-hard", { type: "link", mode: 0o644, uid: 0, gid: 0, linkname: "data/medium.bin" }, seq);
  return { tree, bodies };
}

async function extract(tar: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await execa("tar", ["-xf", tar, "-C", dir]);
}

describe("writing a composed tar", () => {
  afterEach(() => {
    delete process.env.KILN_NATIVE;
  });

  it("has the native module built, writing a plan of file ranges and buffers in order, with progress and errors that say where", async () => {
    const n = native();
    expect(n, "dist/native/kiln_native.node is built by `npm run build` (a C compiler is part of the host contract)").not.toBeNull();
    const dir = await tempDir();
    const src = randomBytes(300_000);
    await writeFile(join(dir, "a"), src);
    const a = openSync(join(dir, "a"), "r");
    const b = openSync(join(dir, "b"), "w");
    const made = Buffer.from("made by kiln");
    const progress = new BigInt64Array(new SharedArrayBuffer(8));
    try {
      // small range (through the staging buffer), large range (copy_file_range), buffer pieces, the end of the file
      const plan = new Float64Array([-1, 0, 4, a, 10, 1000, a, 5000, 200_000, -2, 3, 9, a, 299_990, 10]);
      await n!.writeSegments(b, 50, plan, [made, made], progress);
      expect(progress[0]).toBe(BigInt(50 + 4 + 1000 + 200_000 + 9 + 10));
      // plans are written in the order given; the progress is the end of the last one
      const later = [0, 1, 2].map((i) => n!.writeSegments(b, 300_000 + i * 70_000, new Float64Array([a, i * 70_000, 70_000]), [], progress));
      await Promise.all(later);
      expect(progress[0]).toBe(BigInt(300_000 + 210_000));
      await expect(n!.writeSegments(b, 0, new Float64Array([a, 299_000, 5000]), [])).rejects.toMatchObject({ code: "ESHORTINPUT", fd: a, offset: 300_000 });
      await expect(n!.writeSegments(b, 0, new Float64Array([987_654, 0, 1]), [])).rejects.toMatchObject({ code: "EBADF", fd: 987_654 });
      expect(() => n!.writeSegments(b, 0, new Float64Array([-1, 10, 5]), [made])).toThrow(expect.objectContaining({ code: "EINVAL", message: expect.stringMatching(/outside its buffer/) }));
      expect(() => n!.writeSegments(b, 0, new Float64Array([a, 0]), [])).toThrow(expect.objectContaining({ code: "EINVAL", message: expect.stringMatching(/triples/) }));
      expect(() => n!.writeSegments(b, 0, new Float64Array([a, 0, 2 ** 60]), [])).toThrow(expect.objectContaining({ code: "EINVAL", message: expect.stringMatching(/2\^53/) }));
      // a full device: ENOSPC, for kiln's bytes and for a large range (copy_file_range cannot write there; the buffer path says why)
      const full = openSync("/dev/full", "w");
      try {
        await expect(n!.writeSegments(full, 0, new Float64Array([-1, 0, 10]), [made])).rejects.toMatchObject({ code: "ENOSPC", fd: full });
        await expect(n!.writeSegments(full, 0, new Float64Array([a, 0, 200_000]), [])).rejects.toMatchObject({ code: "ENOSPC", fd: full });
      } finally {
        closeSync(full);
      }
      // the plan is the module's own copy once given: changing the caller's array afterwards changes nothing
      const mine = new Float64Array([a, 0, 100]);
      const given = n!.writeSegments(b, 250_000, mine, []);
      mine.set([-1, 0, 1_000_000]);
      await given;
      // a failed plan marks its progress cell (-1: a hole), and a later plan of that file neither copies nor claims more
      const cell = new BigInt64Array(new SharedArrayBuffer(8));
      const failing = n!.writeSegments(b, 0, new Float64Array([a, 299_999, 10]), [], cell);
      const after = n!.writeSegments(b, 260_000, new Float64Array([a, 0, 5000]), [], cell);
      await expect(failing).rejects.toMatchObject({ code: "ESHORTINPUT" });
      await after;
      expect(cell[0]).toBe(-1n);
    } finally {
      closeSync(a);
      closeSync(b);
    }
    const out = await readFile(join(dir, "b"));
    const want = Buffer.concat([Buffer.alloc(50), made.subarray(0, 4), src.subarray(10, 1010), src.subarray(5000, 205_000), made.subarray(3, 12), src.subarray(299_990)]);
    expect(out.subarray(0, want.length).equals(want)).toBe(true);
    expect(out.subarray(300_000, 510_000).equals(src.subarray(0, 210_000))).toBe(true);
    expect(out.subarray(250_000, 250_100).equals(src.subarray(0, 100))).toBe(true);
    expect(out.subarray(260_000, 265_000).every((x) => x === 0)).toBe(true); // not copied after the failure
  });

  it("fails naming the layer file that is shorter than its index says, and leaves no tar", async () => {
    const dir = await tempDir();
    for (const mode of ["native", "buffer"]) {
      if (mode === "buffer") process.env.KILN_NATIVE = "0";
      const layer = join(dir, `short-${mode}.bin`);
      await writeFile(layer, randomBytes(100_000));
      const tree = new Tree();
      const seq = tree.nextLayer();
      tree.set("small", { type: "file", mode: 0o644, uid: 0, gid: 0, content: { file: layer, offset: 99_000, size: 2000 } }, seq);
      tree.set("zlarge", { type: "file", mode: 0o644, uid: 0, gid: 0, content: { file: layer, offset: 0, size: 100_000 } }, seq);
      const out = join(dir, `${mode}.tar`);
      await expect(writeTreeTar(tree, out, 1_700_000_000, { sha256: true })).rejects.toThrow(`${layer} ended early at 100000`);
      expect(existsSync(out)).toBe(false);
      expect((await readdir(dir)).filter((f) => f.includes(".tmp"))).toEqual([]);
    }
  });

  it("gives the same bytes with in-kernel copies and through the buffer, hashed as it is written; GNU tar reads it", async () => {
    const dir = await tempDir();
    const { tree, bodies } = await fixture(dir);
    const sums: string[] = [];
    for (const mode of ["native", "buffer"]) {
      if (mode === "buffer") process.env.KILN_NATIVE = "0";
      const out = join(dir, `${mode}.tar`);
      const res = await writeTreeTar(tree, out, 1_700_000_000, { sha256: true });
      const bytes = await readFile(out);
      expect(res.size).toBe(bytes.length);
      expect(await res.sha256).toBe(sha256(bytes));
      sums.push(sha256(bytes));
      await extract(out, join(dir, mode));
      for (const [name, body] of Object.entries(bodies)) expect(sha256(await readFile(join(dir, mode, "data", name))), name).toBe(sha256(body));
      expect((await readFile(join(dir, mode, "data/zz-hard"))).equals(bodies["medium.bin"]!)).toBe(true);
      const listing = (await execa("tar", ["--numeric-owner", "-tvf", out])).stdout;
      expect(listing).toMatch(/^-rw------- 5\/7 +\d+ 2023-11-1\d \d\d:\d\d data\/made\.json$/m);
      expect(listing).toMatch(/^lrwxrwxrwx 0\/0 .* data\/link -> large\.bin$/m);
      expect(listing).toMatch(/^hrw-r--r-- 0\/0 .* data\/zz-hard link to data\/medium\.bin$/m);
    }
    expect(sums[1]).toBe(sums[0]);
  });

  it("copies through the buffer when the kernel cannot copy between the two files (another file system)", async () => {
    const dir = await tempDir();
    const shm = await mkdtemp("/dev/shm/kiln-test-"); // tmpfs: copy_file_range to ext4 (or any other file system) fails with EXDEV
    try {
      const { tree, bodies } = await fixture(dir, shm);
      const out = join(dir, "cross.tar");
      const res = await writeTreeTar(tree, out, 1_700_000_000, { sha256: true });
      expect(await res.sha256).toBe(sha256(await readFile(out)));
      await extract(out, join(dir, "x"));
      for (const [name, body] of Object.entries(bodies)) expect(sha256(await readFile(join(dir, "x", "data", name))), name).toBe(sha256(body));
      // a large file first: the kernel copy fails on the first piece, and the copy thread goes on through its buffer
      const only = new Tree();
      only.set("large.bin", { ...tree.nodes.get("data/large.bin")!, seq: undefined } as never, only.nextLayer());
      const big = join(dir, "big.tar");
      await writeTreeTar(only, big, 1_700_000_000);
      await extract(big, join(dir, "y"));
      expect(sha256(await readFile(join(dir, "y", "large.bin")))).toBe(sha256(bodies["large.bin"]!));
    } finally {
      await rm(shm, { recursive: true, force: true });
    }
  });

  it("indexes what it wrote: every entry at the offset of its bytes", async () => {
    const dir = await tempDir();
    const { tree, bodies } = await fixture(dir);
    const out = join(dir, "t.tar");
    await writeTreeTar(tree, out, 1_700_000_000);
    const tar = await readFile(out);
    const files = (await indexTar(out)).filter((e) => e.type === "file");
    expect(files.map((e) => e.name).sort()).toEqual(Object.keys(bodies).map((n) => `data/${n}`).sort());
    for (const e of files) expect(tar.subarray(e.offset, e.offset + e.size).equals(bodies[e.name.slice(5)]!), e.name).toBe(true);
  });
});

describe("hashing a file while it is written", () => {
  it("gives the file's sha256 from progress reports, and stops cleanly when the file is abandoned", async () => {
    const dir = await tempDir();
    const path = join(dir, "grow");
    const fd = openSync(path, "w");
    const follow = await sha256Follow(path);
    const chunks = [randomBytes(3 << 20), randomBytes(5), randomBytes(1 << 20)];
    let size = 0;
    for (const c of chunks) {
      writeSync(fd, c, 0, c.length, size);
      size += c.length;
      follow.advance(size);
      await new Promise((r) => setTimeout(r, 5));
    }
    closeSync(fd);
    expect(await follow.end(size)).toBe(sha256(Buffer.concat(chunks)));

    const other = join(dir, "abandoned");
    await writeFile(other, randomBytes(1000));
    const f2 = await sha256Follow(other);
    f2.advance(500);
    f2.abort();
    // no end(): the process must still be free to exit (the test runner would hang otherwise)
  });
});
