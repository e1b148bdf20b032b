import { readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../helpers/kiln.js";
import { lockAndBuild, sbomProject, type SbomProject, sha256 } from "./project.js";

/* <output>.provenance.json: in-toto Statement v1 + SLSA Provenance v1, subject = the file's sha256, inputs with digests. */

interface Statement {
  _type: string;
  subject: { name: string; digest: { sha256: string } }[];
  predicateType: string;
  predicate: {
    buildDefinition: { buildType: string; externalParameters: Record<string, unknown>; internalParameters: { key: string }; resolvedDependencies: { name: string; uri?: string; digest?: { sha256: string }; annotations?: { kilnKey: string } }[] };
    runDetails: { builder: { id: string }; metadata: Record<string, unknown>; byproducts?: { name: string; digest: { sha256: string } }[] };
  };
}

let p: SbomProject;
let store = "";
let out = "";
let built: { outputs: { name: string; path: string; id: string }[] };
const read = async (name: string) => JSON.parse(await readFile(join(out, `${name}.provenance.json`), "utf8")) as Statement;

beforeAll(async () => {
  p = await sbomProject();
  store = await tempDir("kiln-prov-store");
  built = await lockAndBuild(p.dir, store, ["rootfs", "config.img"]);
  out = join(p.dir, "out/amd64/kvm-generic");
}, 120_000);

afterAll(async () => p?.mirror.close());

describe("provenance", () => {
  it("is an in-toto statement for every output, whose subject digest is the sha256 of the file", async () => {
    expect([...new Set(built.outputs.map((o) => o.name))].sort()).toEqual(["config.img", "rootfs.img", "rootfs.tar"]);
    for (const o of built.outputs) {
      const s = await read(o.name);
      expect(s._type).toBe("https://in-toto.io/Statement/v1");
      expect(s.predicateType).toBe("https://slsa.dev/provenance/v1");
      expect(s.subject).toEqual([{ name: o.name, digest: { sha256: sha256(await readFile(o.path)) } }]);
      expect(s.predicate.buildDefinition.internalParameters.key).toBe(o.id);
      expect(s.predicate.buildDefinition.externalParameters).toMatchObject({ target: o.name, project: "sbomtest", ZARCH: "amd64", HV: "kvm", PLATFORM: "generic", ROOTFS_FORMAT: "squashfs", ROOTFS_VERSION: "1.0" });
      // nothing from the wall clock, the host or the folders
      const text = await readFile(join(out, `${o.name}.provenance.json`), "utf8");
      expect(text).not.toMatch(/startedOn|finishedOn|\/tmp\/|kiln-proj/);
    }
  });

  it("names the inputs with their digests: rootfs.img ← rootfs.tar (sha256 and key), rootfs.tar ← the spec and the package images", async () => {
    const tar = built.outputs.find((o) => o.name === "rootfs.tar")!;
    const img = await read("rootfs.img");
    expect(img.predicate.buildDefinition.resolvedDependencies).toEqual([{ name: "rootfs.tar", digest: { sha256: sha256(await readFile(tar.path)) }, annotations: { kilnKey: tar.id } }]);
    const t = await read("rootfs.tar");
    const index = JSON.parse(await readFile(join(store, "index.json"), "utf8")) as { manifests: { digest: string; annotations: Record<string, string> }[] };
    const deps = t.predicate.buildDefinition.resolvedDependencies;
    expect(deps[0]).toEqual({ name: "images/out/rootfs-kvm-generic.yml", digest: { sha256: sha256(await readFile(join(p.dir, "images/out/rootfs-kvm-generic.yml"))) } });
    for (const name of ["base", "app", "etc"]) {
      const m = index.manifests.find((x) => x.annotations["org.opencontainers.image.ref.name"]?.startsWith(`kiln/${name}:`))!;
      const ref = m.annotations["org.opencontainers.image.ref.name"]!;
      expect(deps).toContainEqual({ name: ref, uri: `pkg:oci/${name}@${m.digest}?arch=amd64`, digest: { sha256: m.digest.slice(7) }, annotations: { kilnKey: m.annotations["dev.kiln.key"] } });
    }
    // the SBOMs are its byproducts
    expect(t.predicate.runDetails.byproducts).toEqual([
      { name: "rootfs.cdx.json", digest: { sha256: sha256(await readFile(join(out, "rootfs.cdx.json"))) } },
      { name: "rootfs.spdx.json", digest: { sha256: sha256(await readFile(join(out, "rootfs.spdx.json"))) } },
    ]);
    const conf = await read("config.img");
    expect(conf.predicate.buildDefinition.resolvedDependencies.map((d) => d.name)).toEqual(["conf/README.txt"]);
  });

  it("is written again for a cached output without rebuilding or re-hashing it", async () => {
    const before = await stat(join(out, "rootfs.img"));
    const text = await readFile(join(out, "rootfs.img.provenance.json"), "utf8");
    await rm(join(out, "rootfs.img.provenance.json"));
    const again = await lockAndBuild(p.dir, store, ["rootfs", "config.img"]);
    expect([...new Set(again.outputs.map((o) => o.name))].sort()).toEqual(["config.img", "rootfs.img", "rootfs.tar"]);
    expect((await stat(join(out, "rootfs.img"))).mtimeMs).toBe(before.mtimeMs);
    expect(await readFile(join(out, "rootfs.img.provenance.json"), "utf8")).toBe(text);
    // the digest comes from the record made when the file was built
    const record = JSON.parse(await readFile(join(p.dir, "out/.kiln/records/amd64/kvm-generic/rootfs.img_amd64_kvm-generic.json"), "utf8")) as { sha256: string };
    expect(record.sha256).toBe(sha256(await readFile(join(out, "rootfs.img"))));
  });
});
