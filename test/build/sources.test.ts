import { execa } from "execa";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { built, jsonLines, KILN_YML, kiln, tempDir, writeProject } from "../helpers/kiln.js";
import { layerOf, readTar } from "../helpers/layers.js";

let server: Server;
let base = "";
let hits = 0;
let tarball: Buffer;

beforeAll(async () => {
  const src = await tempDir();
  await writeFile(join(src, "hello.c"), "int main(void) { return 0; }\n");
  const { stdout } = await execa("tar", ["-c", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-C", src, "--transform", "s,^\\.,hello-1.0,", "."], { encoding: "buffer" });
  tarball = Buffer.from(stdout);
  server = createServer((req, res) => {
    hits++;
    if (req.url === "/hello-1.0.tar") res.end(tarball);
    else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function recipe(url: string, sum: string): string {
  return `kind: script\nsources:\n  - url: ${url}\n    sha256: ${sum}\nscript: |\n  install -D -m 0644 hello-1.0/hello.c "$DESTDIR/usr/src/hello.c"\n`;
}

describe("downloaded sources", () => {
  it("downloads once into the shared cache, verifies, unpacks, and works --offline afterwards", async () => {
    const store = await tempDir();
    const a = await writeProject({ "kiln.yml": KILN_YML, "pkg/hello/build.yml": recipe(`${base}/hello-1.0.tar`, sha(tarball)) });
    hits = 0;
    const r = await kiln(["-C", a, "build"], { store });
    expect(r.code, r.stderr).toBe(0);
    expect(hits).toBe(1);
    const entries = await readTar(await layerOf(store, "hello"));
    expect(entries.find((e) => e.name === "usr/src/hello.c")?.body).toContain("int main");
    // A second project with the same pinned source (another variant, say) does not download again,
    // and with --offline the cache is all it needs.
    const b = await writeProject({ "kiln.yml": KILN_YML.replace("name: t", "name: t2"), "pkg/hello/build.yml": recipe(`${base}/hello-1.0.tar`, sha(tarball)) + "# other\n" });
    const off = await kiln(["-C", b, "--offline", "--json", "build"], { store });
    expect(off.code, off.stderr).toBe(0);
    expect(built(off.stdout)).toEqual(["pkg/hello"]);
    expect(hits).toBe(1);
  });

  it("a cached download is trusted by its stamp; store fsck re-hashes the cache and --repair drops a rotten file", async () => {
    const store = await tempDir();
    const dir = await writeProject({ "kiln.yml": KILN_YML, "pkg/hello/build.yml": recipe(`${base}/hello-1.0.tar`, sha(tarball)) });
    hits = 0;
    expect((await kiln(["-C", dir, "build"], { store })).code).toBe(0);
    const file = join(store, "kiln/downloads", sha(tarball));
    const { chmod, readFile, writeFile, stat, utimes } = await import("node:fs/promises");
    expect(await readFile(`${file}.verified`, "utf8")).toMatch(/^\d+:[\d.]+:\d+$/);
    const clean = await kiln(["--json", "store", "fsck"], { store });
    expect(clean.code, clean.stderr).toBe(0);
    expect(JSON.parse(clean.stdout.trim().split("\n").pop()!)).toMatchObject({ downloads: 1 });
    // bit rot: same size and times, other bytes
    const st = await stat(file);
    const bytes = await readFile(file);
    bytes[600] = bytes[600]! ^ 0xff;
    await chmod(file, 0o644);
    await writeFile(file, bytes);
    await utimes(file, st.atime, st.mtime);
    const bad = await kiln(["store", "fsck"], { store });
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toContain(`download ${file} does not hash to its name`);
    const repaired = await kiln(["store", "fsck", "--repair"], { store });
    expect(repaired.stdout + repaired.stderr).toContain("removed: the next build fetches it again");
    await expect(stat(file)).rejects.toThrow();
    // the next build fetches it again
    await writeProject({ "pkg/hello/build.yml": recipe(`${base}/hello-1.0.tar`, sha(tarball)) + "# rebuilt\n" }, dir);
    expect((await kiln(["-C", dir, "build"], { store })).code).toBe(0);
    expect(hits).toBe(2);
    expect(sha(await readFile(file))).toBe(sha(tarball));
  });

  it("rejects a checksum mismatch with the recipe's line, and keeps nothing", async () => {
    const store = await tempDir();
    const wrong = "ab".repeat(32);
    const dir = await writeProject({ "kiln.yml": KILN_YML, "pkg/hello/build.yml": recipe(`${base}/hello-1.0.tar`, wrong) });
    const r = await kiln(["-C", dir, "--json", "build"], { store });
    expect(r.code).toBe(1);
    const fail = jsonLines(r.stdout).find((e) => e.type === "fail");
    expect(fail).toMatchObject({ target: "pkg/hello", code: "E_SOURCE_CHECKSUM" });
    expect(r.stderr).toContain(`has sha256 ${sha(tarball)}, but the recipe declares ${wrong}`);
    expect(r.stderr).toContain("(pkg/hello/build.yml:4:13)");
    const { readdir } = await import("node:fs/promises");
    expect(await readdir(join(store, "kiln/downloads"))).toEqual([]);
    expect(await readdir(join(store, "kiln/tmp"))).toEqual([]);
  });

  it("fails clearly offline when the cache lacks a download, and on a 404", async () => {
    const store = await tempDir();
    const dir = await writeProject({ "kiln.yml": KILN_YML, "pkg/hello/build.yml": recipe(`${base}/hello-1.0.tar`, sha(tarball)) });
    const off = await kiln(["-C", dir, "--offline", "build"], { store });
    expect(off.code).toBe(1);
    expect(off.stderr).toMatch(/E_SOURCE_FETCH .*--offline forbids downloading it/);
    const dir404 = await writeProject({ "kiln.yml": KILN_YML, "pkg/hello/build.yml": recipe(`${base}/nope.tar`, sha(tarball)) });
    const nf = await kiln(["-C", dir404, "build"], { store });
    expect(nf.code).toBe(1);
    expect(nf.stderr).toMatch(/E_SOURCE_FETCH cannot download .*nope\.tar: HTTP 404/);
  });
});

describe("scheduling", () => {
  it("starts the step with the longest critical path first (its downloads' size), not the first in name order", async () => {
    const downloads = await tempDir();
    const big = Buffer.alloc(24 << 20, 7); // ~0.8 s of estimated work at 30 MB/s
    const bigFile = join(downloads, "big.bin");
    await writeFile(bigFile, big);
    const files = {
      "kiln.yml": KILN_YML,
      "pkg/aaa/build.yml": "kind: script\nscript: |\n  echo small > \"$DESTDIR/a\"\n",
      "pkg/zzz/build.yml": `kind: script\nsources:\n  - url: file://${bigFile}\n    sha256: ${sha(big)}\nscript: |\n  echo big > "$DESTDIR/z"\n`,
      "pkg/zzz-app/build.yml": "kind: script\ndepends: [zzz]\nscript: |\n  echo app > \"$DESTDIR/app\"\n",
    };
    const dir = await writeProject(files);
    const env = { KILN_DOWNLOADS: join(downloads, "cache") };
    expect((await kiln(["-C", dir, "build"], { store: await tempDir(), env })).code).toBe(0); // fills the download cache
    const r = await kiln(["-C", dir, "--out", await tempDir(), "--json", "-j", "1", "build"], { store: await tempDir(), env });
    expect(r.code, r.stderr).toBe(0);
    const starts = jsonLines(r.stdout).filter((e) => e.type === "start").map((e) => e.target);
    // zzz and its dependent are the long chain: zzz first; then equal estimates keep the plan's order
    expect(starts).toEqual(["pkg/zzz", "pkg/aaa", "pkg/zzz-app"]);
  });
});
