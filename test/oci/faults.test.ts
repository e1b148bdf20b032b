import { execa } from "execa";
import { open, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, KILN_YML, kiln, tempDir, writeProject } from "../helpers/kiln.js";
import { Registry, waitForLog } from "./registry.js";

const BIG = {
  "kiln.yml": KILN_YML + "org: lfedge\n",
  "pkg/small/build.yml": "kind: files\nfiles:\n  - path: /etc/small\n    contents: \"s\\n\"\n",
  "pkg/big/build.yml": "kind: script\nscript: |\n  head -c 6000000 /dev/urandom > \"$DESTDIR/big\"\n",
};

const uploadedDigests = (log: string) => [...log.matchAll(/"PUT \/v2\/[^"]*digest=sha256(?:%3A|:)([0-9a-f]{64})[^"]*" 201/g)].map((m) => m[1]!);

describe("registry faults", () => {
  it("a registry killed in the middle of a chunked push and restarted: the push completes by retrying", async () => {
    const reg = await Registry.start();
    const dir = await writeProject(BIG);
    const store = await tempDir();
    expect((await kiln(["-C", dir, "build"], { store })).code).toBe(0);
    const env = { NO_COLOR: "1", CI: "1", KILN_STORE: store, KILN_REGISTRY_CHUNK_SIZE: "131072" };
    const push = execa("node", [BIN, "-C", dir, "-v", "push", "--registry", `${reg.host}/lfedge`], { reject: false, env });
    await waitForLog(reg, /"PATCH \/v2\/lfedge\/big\/blobs\/uploads/);
    await reg.stop();
    await new Promise((r) => setTimeout(r, 300));
    await reg.run();
    const res = await push;
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/retrying in \d+ ms/);

    // What is in the registry is whole: an empty store pulls it and the digests check out.
    const tag = /lfedge\/big:([0-9a-f]{40})/.exec(res.stdout)![1]!;
    const pulled = await kiln(["pull", `${reg.host}/lfedge/big:${tag}`], { store: await tempDir() });
    expect(pulled.code, pulled.stderr).toBe(0);
  });

  it("a registry that answers 500 to a blob's HEAD for good (its link written, its data not): the push uploads the blob again", async () => {
    const reg = await Registry.start();
    // in front of the real registry: every HEAD of a blob answered 500, the rest passed through
    const { createServer, request } = await import("node:http");
    const proxy = createServer((req, res) => {
      if (req.method === "HEAD" && req.url?.includes("/blobs/")) {
        res.writeHead(500).end();
        return;
      }
      const up = request({ host: "127.0.0.1", port: reg.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    try {
      const port = (proxy.address() as { port: number }).port;
      const dir = await writeProject(BIG);
      const store = await tempDir();
      const r = await kiln(["-C", dir, "push", "--registry", `127.0.0.1:${port}/lfedge`, "small"], { store, env: { KILN_REGISTRY_RETRIES: "0" } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/pkg\/small .*2 blobs, 0 mounted, 0 there/);
      // what the registry holds is whole: an empty store pulls it straight from the registry
      const tag = /lfedge\/small:([0-9a-f]{40})/.exec(r.stdout)![1]!;
      const pulled = await kiln(["pull", `${reg.host}/lfedge/small:${tag}`], { store: await tempDir() });
      expect(pulled.code, pulled.stderr).toBe(0);
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it("an interrupted push, run again, sends only the blobs that did not make it", async () => {
    const reg = await Registry.start();
    const dir = await writeProject(BIG);
    const store = await tempDir();
    expect((await kiln(["-C", dir, "build"], { store })).code).toBe(0);
    const env = { NO_COLOR: "1", CI: "1", KILN_STORE: store, KILN_REGISTRY_CHUNK_SIZE: "131072", KILN_REGISTRY_RETRIES: "0" };
    const push = execa("node", [BIN, "-C", dir, "push", "--registry", `${reg.host}/lfedge`], { reject: false, env });
    await waitForLog(reg, /"PATCH \/v2\/lfedge\/big\/blobs\/uploads/);
    await waitForLog(reg, /"PUT \/v2\/lfedge\/small\/manifests\/[^"]*" 201/);
    await reg.stop();
    const first = await push;
    expect(first.exitCode).toBe(3);
    expect(first.stderr).toContain("E_REGISTRY");
    const before = uploadedDigests(reg.log);
    expect(before.length).toBeGreaterThanOrEqual(2);
    const mark = reg.log.length;
    await reg.run();
    const second = await kiln(["-C", dir, "push", "--registry", `${reg.host}/lfedge`], { store, env: { KILN_REGISTRY_CHUNK_SIZE: "131072" } });
    expect(second.code, second.stderr).toBe(0);
    const after = uploadedDigests(reg.log.slice(mark));
    expect(after.length).toBeGreaterThan(0);
    for (const d of before) expect(after).not.toContain(d);
    expect(second.stdout).toMatch(/pkg\/small .*up to date/);
  });

  it("a blob corrupted on the registry's disk: the pull fails with a digest error and nothing enters the store", async () => {
    const reg = await Registry.start();
    const dir = await writeProject(BIG);
    const s1 = await tempDir();
    const push = await kiln(["-C", dir, "--json", "push", "--registry", `${reg.host}/lfedge`, "small"], { store: s1 });
    expect(push.code, push.stderr).toBe(0);
    const idx = JSON.parse(await readFile(join(s1, "index.json"), "utf8")) as { manifests: { digest: string; annotations: Record<string, string> }[] };
    const ref = idx.manifests.find((m) => m.annotations["org.opencontainers.image.ref.name"]!.startsWith("lfedge/small:"))!;
    const manifest = JSON.parse(await readFile(join(s1, "blobs/sha256", ref.digest.slice(7)), "utf8")) as { layers: { digest: string }[] };
    const layer = manifest.layers[0]!.digest.slice(7);
    const file = join(reg.storage, "docker/registry/v2/blobs/sha256", layer.slice(0, 2), layer, "data");
    const fh = await open(file, "r+");
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 600);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, 600);
    await fh.close();

    const s2 = await tempDir();
    const tag = ref.annotations["org.opencontainers.image.ref.name"]!.split(":")[1]!;
    const pull = await kiln(["pull", `${reg.host}/lfedge/small:${tag}`], { store: s2 });
    expect(pull.code).toBe(1);
    expect(pull.stderr).toContain("E_BLOB_DIGEST");
    expect(pull.stderr).toContain(layer);
    expect(await readdir(join(s2, "blobs/sha256"))).not.toContain(layer);
    expect(await readdir(join(s2, "kiln/tmp"))).toEqual([]);
    expect((JSON.parse(await readFile(join(s2, "index.json"), "utf8")) as { manifests: unknown[] }).manifests).toEqual([]);
  });
});
