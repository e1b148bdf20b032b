import { execa } from "execa";
import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { KILN_YML, kiln, tempDir, writeProject } from "../helpers/kiln.js";
import { layerOf, readTar } from "../helpers/layers.js";
import { freePort, Registry } from "./registry.js";

const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** A multi-arch image (amd64, arm64) with gzip layers in an OCI layout, written by hand; returns the index digest. */
async function multiArchLayout(dir: string): Promise<string> {
  await mkdir(join(dir, "blobs/sha256"), { recursive: true });
  const put = async (b: Buffer | string) => {
    const d = sha(b);
    await writeFile(join(dir, "blobs/sha256", d.slice(7)), b);
    return { digest: d, size: Buffer.byteLength(b) };
  };
  const manifests = [];
  for (const arch of ["amd64", "arm64"]) {
    const src = await tempDir("kiln-layer");
    await mkdir(join(src, "etc"));
    await writeFile(join(src, "etc/arch"), `${arch}\n`);
    const tar = (await execa("tar", ["-C", src, "--owner=0", "--group=0", "--numeric-owner", "-cf", "-", "etc"], { encoding: "buffer" })).stdout as unknown as Buffer;
    const layer = await put(gzipSync(tar));
    const config = await put(JSON.stringify({ architecture: arch, os: "linux", config: {}, rootfs: { type: "layers", diff_ids: [sha(tar)] } }));
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config }, layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...layer }] });
    manifests.push({ mediaType: "application/vnd.oci.image.manifest.v1+json", ...(await put(manifest)), platform: { architecture: arch, os: "linux" } });
  }
  const index = await put(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests }));
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.index.v1+json", ...index, annotations: { "org.opencontainers.image.ref.name": "v1" } }] }));
  return index.digest;
}

describe("interop and third-party images", () => {
  it("pulls a multi-arch index that skopeo pushed, and builds a `kind: oci` package from it by digest (offline from the store after)", async () => {
    const reg = await Registry.start();
    const layout = await tempDir("kiln-layout");
    const digest = await multiArchLayout(layout);
    await execa("skopeo", ["copy", "--all", "--preserve-digests", "--dest-tls-verify=false", `oci:${layout}:v1`, `docker://${reg.host}/third/multi:v1`]);

    const s1 = await tempDir();
    const pull = await kiln(["--json", "pull", `${reg.host}/third/multi:v1`], { store: s1 });
    expect(pull.code, pull.stderr).toBe(0);
    const idx = JSON.parse(await readFile(join(s1, "index.json"), "utf8")) as { manifests: { digest: string; annotations: Record<string, string> }[] };
    expect(idx.manifests.find((m) => m.annotations["org.opencontainers.image.ref.name"] === "third/multi:v1")!.digest).toBe(digest);
    for (const f of await readdir(join(layout, "blobs/sha256"))) {
      expect((await readFile(join(s1, "blobs/sha256", f))).equals(await readFile(join(layout, "blobs/sha256", f)))).toBe(true);
    }

    const dir = await writeProject({ "kiln.yml": KILN_YML, "pkg/ext/build.yml": `kind: oci\nref: ${reg.host}/third/multi@${digest}\n` });
    const s2 = await tempDir();
    const build = await kiln(["-C", dir, "--json", "build"], { store: s2 });
    expect(build.code, build.stderr).toBe(0);
    const tar = await readTar(await layerOf(s2, "ext"));
    expect(tar.find((e) => e.name === "etc/arch")?.body).toBe("amd64\n");

    // --offline: an empty store is a clear error; a store that has the image needs no registry.
    const empty = await kiln(["-C", dir, "--offline", "build"], { store: await tempDir() });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain("E_OFFLINE");
    await reg.stop();
    const dir2 = await writeProject({ "kiln.yml": KILN_YML, "pkg/ext/build.yml": `kind: oci\nref: ${reg.host}/third/multi@${digest}\n` });
    const offline = await kiln(["-C", dir2, "--offline", "build"], { store: s1 });
    expect(offline.code, offline.stderr).toBe(0);
    expect((await readTar(await layerOf(s1, "ext"))).find((e) => e.name === "etc/arch")?.body).toBe("amd64\n");
  });

  it("the bearer-token flow: a token service in front of the registry, credentials only sent to the realm", async () => {
    const reg = await Registry.start();
    const port = await freePort();
    const seen: string[] = [];
    const token = "tok-" + Math.random().toString(36).slice(2);
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url!, `http://127.0.0.1:${port}`);
      if (url.pathname === "/token") {
        seen.push(`token ${url.searchParams.getAll("scope").join(" ")}`);
        if (req.headers.authorization !== `Basic ${Buffer.from("bob:tok-pass").toString("base64")}`) return void res.writeHead(401).end();
        return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token }));
      }
      if (req.headers.authorization !== `Bearer ${token}`) {
        seen.push(`401 ${req.method} ${url.pathname}`);
        if (req.headers.authorization?.startsWith("Basic")) seen.push("LEAK");
        res.writeHead(401, { "www-authenticate": `Bearer realm="http://127.0.0.1:${port}/token",service="test",scope="repository:x:pull"` });
        return void res.end();
      }
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const headers = { ...req.headers };
        delete headers.authorization;
        delete headers.host;
        fetch(`http://${reg.host}${req.url}`, { method: req.method, headers: headers as Record<string, string>, body: chunks.length ? Buffer.concat(chunks) : undefined, redirect: "manual" }).then(
          async (r) => {
            const h: Record<string, string> = {};
            r.headers.forEach((v, k) => {
              if (k !== "content-encoding" && k !== "transfer-encoding") h[k] = k === "location" ? v.replace(reg.host, `127.0.0.1:${port}`) : v;
            });
            res.writeHead(r.status, h).end(Buffer.from(await r.arrayBuffer()));
          },
          () => res.writeHead(502).end(),
        );
      });
    });
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    try {
      const dir = await writeProject({ "kiln.yml": KILN_YML, "pkg/a/build.yml": "kind: files\nfiles:\n  - path: /a\n    contents: a\n" });
      const env = { KILN_REGISTRY_USER: "bob", KILN_REGISTRY_PASSWORD: "tok-pass" };
      const push = await kiln(["-C", dir, "-v", "push", "--registry", `127.0.0.1:${port}/ns`], { store: await tempDir(), env });
      expect(push.code, push.stderr).toBe(0);
      expect(push.stderr).not.toContain(token);
      expect(push.stderr).not.toContain("tok-pass");
      expect(seen).toContain("token repository:ns/a:pull,push");
      expect(seen).not.toContain("LEAK");
      const bad = await kiln(["-C", dir, "push", "--registry", `127.0.0.1:${port}/ns`], { store: await tempDir(), env: { KILN_REGISTRY_USER: "bob", KILN_REGISTRY_PASSWORD: "nope" } });
      expect(bad.code).toBe(3);
      expect(bad.stderr).toMatch(/E_REGISTRY_AUTH.*token service refused the credentials of user 'bob'/);
    } finally {
      server.close();
    }
  });
});
