import { execa } from "execa";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { built, jsonLines, KILN_YML, kiln, tempDir, writeProject } from "../helpers/kiln.js";
import { Registry } from "./registry.js";

const PROJECT = {
  "kiln.yml": KILN_YML + "org: lfedge\n",
  "pkg/a/build.yml": "kind: files\nfiles:\n  - path: /etc/a\n    contents: \"a\\n\"\n",
  "pkg/b/build.yml": "kind: script\ndepends: [a]\nscript: |\n  head -c 300000 /dev/zero | tr '\\0' b > \"$DESTDIR/big\"\n  cat /etc/a 2>/dev/null > \"$DESTDIR/seen\" || true\n",
};

interface Index { manifests: { digest: string; annotations?: Record<string, string> }[] }
const storeIndex = async (s: string) => JSON.parse(await readFile(join(s, "index.json"), "utf8")) as Index;
const refOf = async (s: string, prefix: string) => (await storeIndex(s)).manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"]?.startsWith(prefix));
const blob = (s: string, d: string) => readFile(join(s, "blobs", "sha256", d.slice(7)));

/** Every blob of an image in a store: manifest, config, layers. */
async function closure(store: string, digest: string): Promise<string[]> {
  const m = JSON.parse((await blob(store, digest)).toString()) as { config: { digest: string }; layers: { digest: string }[] };
  return [digest, m.config.digest, ...m.layers.map((l) => l.digest)];
}

describe("push and pull (docker-registry with htpasswd basic auth)", () => {
  it("pushes with credentials, pulls into an empty store byte-identically, and skopeo reads it", async () => {
    const reg = await Registry.start({ user: "kiln", password: "s3cr3t-pw" });
    const dir = await writeProject(PROJECT);
    const s1 = await tempDir();
    const env = { KILN_REGISTRY_USER: "kiln", KILN_REGISTRY_PASSWORD: "s3cr3t-pw", KILN_REGISTRY_CHUNK_SIZE: "65536", HOME: await tempDir() };
    const push = await kiln(["-C", dir, "-v", "push", "--registry", `${reg.host}/lfedge`, "--tag", "latest"], { store: s1, env });
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout).toMatch(/pkg\/b\s+127\.0\.0\.1:\d+\/lfedge\/b:[0-9a-f]{40}/);
    // b's layer (300 kB) went in chunks: PATCH requests in the access log.
    expect(reg.requests("PATCH", "/lfedge/b/").length).toBeGreaterThan(2);
    for (const out of [push.stdout, push.stderr]) {
      expect(out).not.toContain("s3cr3t-pw");
      expect(out).not.toContain(Buffer.from("kiln:s3cr3t-pw").toString("base64"));
    }

    const tag = (await refOf(s1, "lfedge/b:"))!.annotations!["org.opencontainers.image.ref.name"]!.split(":")[1]!;
    const s2 = await tempDir();
    const pull = await kiln(["pull", `${reg.host}/lfedge/b:${tag}`, `${reg.host}/lfedge/a:latest`], { store: s2, env });
    expect(pull.code, pull.stderr).toBe(0);
    const d1 = (await refOf(s1, "lfedge/b:"))!.digest;
    const d2 = (await refOf(s2, `lfedge/b:${tag}`))!.digest;
    expect(d2).toBe(d1);
    for (const d of await closure(s1, d1)) expect((await blob(s2, d)).equals(await blob(s1, d))).toBe(true);
    expect(await refOf(s2, "lfedge/a:latest")).toBeDefined();

    // skopeo reads what kiln pushed, with the same credentials, and copies it out.
    const creds = ["--creds", "kiln:s3cr3t-pw", "--tls-verify=false"];
    const insp = await execa("skopeo", ["inspect", ...creds, `docker://${reg.host}/lfedge/b:latest`]);
    expect(JSON.parse(insp.stdout).Digest).toBe(d1);
    const out = await tempDir();
    await execa("skopeo", ["copy", "--preserve-digests", "--src-creds", "kiln:s3cr3t-pw", "--src-tls-verify=false", `docker://${reg.host}/lfedge/b:latest`, `oci:${out}:b`]);
    const copied = await storeIndex(out);
    expect(copied.manifests[0]!.digest).toBe(d1);

    // A second push sends no blob: every one is HEADed first and found.
    const posts = reg.requests("POST").length;
    const again = await kiln(["-C", dir, "push", "--registry", `${reg.host}/lfedge`], { store: s1, env });
    expect(again.code, again.stderr).toBe(0);
    expect(reg.requests("POST").length).toBe(posts);
    expect(again.stdout).toContain("up to date");
  });

  it("wrong or missing credentials give a clear error that never shows the secret, even with -v", async () => {
    const reg = await Registry.start({ user: "kiln", password: "right-pass" });
    const dir = await writeProject(PROJECT);
    const store = await tempDir();
    const home = await tempDir();
    const bad = await kiln(["-C", dir, "-v", "push", "--registry", `${reg.host}/lfedge`], { store, env: { KILN_REGISTRY_USER: "kiln", KILN_REGISTRY_PASSWORD: "WRONG-secret-42", HOME: home } });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/E_REGISTRY_AUTH.*refused .*user 'kiln'/);
    const all = bad.stdout + bad.stderr;
    expect(all).not.toContain("WRONG-secret-42");
    expect(all).not.toContain(Buffer.from("kiln:WRONG-secret-42").toString("base64"));

    // Credentials from ~/.docker/config.json (auths, base64 user:password).
    const dockerHome = await tempDir();
    await execa("mkdir", ["-p", join(dockerHome, ".docker")]);
    await writeFile(join(dockerHome, ".docker", "config.json"), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from("kiln:right-pass").toString("base64") } } }));
    const ok = await kiln(["-C", dir, "-v", "push", "--registry", `${reg.host}/lfedge`], { store, env: { HOME: dockerHome } });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout + ok.stderr).not.toContain("right-pass");

    const none = await kiln(["pull", `${reg.host}/lfedge/a:latest`], { store: await tempDir(), env: { HOME: home } });
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/E_REGISTRY_AUTH.*needs credentials/);
  });

  it("two stores sharing a registry: the second build only pulls, and kiln plan says so", async () => {
    const reg = await Registry.start();
    const cache = `${reg.host}/cache`;
    const m1 = await writeProject(PROJECT);
    const first = await kiln(["-C", m1, "--json", "build", "--cache-to", cache], { store: await tempDir() });
    expect(first.code, first.stderr).toBe(0);
    expect(built(first.stdout)).toEqual(["pkg/a", "pkg/b"]);

    const m2 = await writeProject(PROJECT);
    const s2 = await tempDir();
    const plan = await kiln(["-C", m2, "plan"], { store: s2, env: { KILN_CACHE_FROM: cache } });
    expect(plan.stdout).toMatch(/pkg\/a\s+build\s+in the remote cache 127\.0\.0\.1:\d+\/cache/);
    const second = await kiln(["-C", m2, "--json", "build", "--cache-from", cache], { store: s2 });
    expect(second.code, second.stderr).toBe(0);
    const done = jsonLines(second.stdout).filter((e) => e.type === "done");
    expect(done).toHaveLength(2);
    for (const e of done) expect(e).toMatchObject({ cached: true, remote: cache });
    expect(jsonLines(second.stdout).some((e) => e.type === "start")).toBe(false);
    // Then it is an ordinary store: a rebuild is cached locally, no registry needed.
    const third = await kiln(["-C", m2, "--json", "--offline", "build"], { store: s2 });
    expect(built(third.stdout)).toEqual([]);

    // Promote from the cache namespace to a release one: blobs are mounted, not uploaded.
    const mounted = await kiln(["-C", m2, "--json", "push", "--registry", `${reg.host}/release`], { store: s2, env: { KILN_CACHE_FROM: cache } });
    expect(mounted.code, mounted.stderr).toBe(0);
    const res = jsonLines(mounted.stdout).find((e) => e.type === "result") as { data: { pushed: { mounted: number; uploaded: number }[] } };
    expect(res.data.pushed.every((p) => p.mounted === 2 && p.uploaded === 0)).toBe(true);
    expect(reg.requests("POST", "mount=").length).toBeGreaterThanOrEqual(4);
  });
});
