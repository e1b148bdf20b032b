import { execa } from "execa";
import { cp, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, writeProject } from "../helpers/kiln.js";
import { lockAndBuild, sbomProject, type SbomProject, sha1, sha256 } from "./project.js";
import { SELF_ID } from "../../src/compose/sbom/ids.js";
import { spdxConsistency, validateCycloneDx, validateSpdx } from "./schemas.js";

/* SBOMs of a built image: valid against the official schemas, listing what kiln.lock and the recipes say, embedded and beside, deterministic. */

interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo?: string;
  downloadLocation: string;
  checksums?: { algorithm: string; checksumValue: string }[];
  licenseDeclared?: string;
  sourceInfo?: string;
  externalRefs?: { referenceType: string; referenceLocator: string }[];
}
interface SpdxDoc {
  SPDXID: string;
  documentNamespace: string;
  creationInfo: { created: string };
  packages: SpdxPackage[];
  files: { SPDXID: string; fileName: string; checksums: { algorithm: string; checksumValue: string }[] }[];
  relationships: { spdxElementId: string; relationshipType: string; relatedSpdxElement: string }[];
}
interface CdxComponent {
  type: string;
  name: string;
  version?: string;
  purl?: string;
  "bom-ref": string;
  hashes?: { alg: string; content: string }[];
  licenses?: { license: { id?: string; name?: string } }[];
  externalReferences?: { url: string; hashes: { content: string }[] }[];
}
interface CdxBom {
  serialNumber: string;
  metadata: { timestamp: string; component: { name: string } };
  components: CdxComponent[];
  dependencies: { ref: string; dependsOn: string[] }[];
}

let p: SbomProject;
let out = "";
let spdxText = "";
let cdxText = "";
let spdx: SpdxDoc;
let cdx: CdxBom;

beforeAll(async () => {
  p = await sbomProject();
  await lockAndBuild(p.dir, await tempDir("kiln-sbom-store"), ["rootfs"]);
  out = join(p.dir, "out/amd64/kvm-generic");
  spdxText = await readFile(join(out, "rootfs.spdx.json"), "utf8");
  cdxText = await readFile(join(out, "rootfs.cdx.json"), "utf8");
  spdx = JSON.parse(spdxText) as SpdxDoc;
  cdx = JSON.parse(cdxText) as CdxBom;
}, 120_000);

afterAll(async () => p?.mirror.close());

/** Entries of a tar (regular files) with their bytes. */
async function tarFiles(tar: string): Promise<Map<string, Buffer>> {
  const names = (await execa("tar", ["-tvf", tar])).stdout.split("\n").filter((l) => l.startsWith("-")).map((l) => l.split(/\s+/).slice(5).join(" "));
  const out = new Map<string, Buffer>();
  for (const n of names) out.set(n, Buffer.from((await execa("tar", ["-xOf", tar, n], { encoding: "buffer", stripFinalNewline: false })).stdout));
  return out;
}

const byName = (name: string) => spdx.packages.find((x) => x.name === name);
const rel = (a: string | undefined, type: string, b: string | undefined) => spdx.relationships.some((r) => r.spdxElementId === a && r.relationshipType === type && r.relatedSpdxElement === b);

describe("SBOMs", () => {
  it("validate against the SPDX 2.3 and CycloneDX 1.5 JSON schemas", () => {
    expect(validateSpdx(spdx)).toEqual([]);
    expect(spdxConsistency(spdx)).toEqual([]);
    expect(validateCycloneDx(cdx)).toEqual([]);
    // the validators do reject what is wrong
    expect(validateSpdx({ ...spdx, packages: [{ name: "x" }] })).not.toEqual([]);
    expect(validateCycloneDx({ ...cdx, components: [{ type: "rootfs", name: "x" }] })).not.toEqual([]);
    expect(spdxConsistency({ ...spdx, relationships: [{ spdxElementId: "SPDXRef-DOCUMENT", relatedSpdxElement: "SPDXRef-nothing" }] })).not.toEqual([]);
  });

  it("are beside the image and in it, byte for byte", async () => {
    const files = await tarFiles(join(out, "rootfs.tar"));
    expect(files.get("usr/share/sbom/rootfs.spdx.json")?.toString()).toBe(spdxText);
    expect(files.get("usr/share/sbom/rootfs.cdx.json")?.toString()).toBe(cdxText);
  });

  it("list the Debian packages as kiln.lock pins them: version, source, licenses, purl, .deb sha256", async () => {
    const lock = JSON.parse(await readFile(join(p.dir, "kiln.lock"), "utf8")) as { recipes: Record<string, { archs: Record<string, { name: string; version: string; sha256: string }[]> }> };
    const pinned = lock.recipes.base!.archs.amd64!;
    const debs = spdx.packages.filter((x) => x.externalRefs?.some((r) => r.referenceLocator.startsWith("pkg:deb/")));
    expect(debs.map((d) => `${d.name} ${d.versionInfo}`).sort()).toEqual(pinned.map((d) => `${d.name} ${d.version}`).sort());
    for (const d of debs) expect(d.checksums).toEqual([{ algorithm: "SHA256", checksumValue: pinned.find((x) => x.name === d.name)!.sha256 }]);
    const foo = byName("libfoo1")!;
    expect(foo.externalRefs![0]!.referenceLocator).toBe("pkg:deb/debian/libfoo1@1:2.0-1%2Bb1?arch=amd64");
    expect(foo.sourceInfo).toBe("built from the Debian source package foo 1:2.0-1");
    expect(foo.licenseDeclared).toBe("GPL-2.0-or-later AND MIT AND (GPL-2.0-or-later OR Artistic-1.0-Perl)");
    expect(byName("tool")!.licenseDeclared).toBe("Apache-2.0");
    const cfoo = cdx.components.find((c) => c.name === "libfoo1")!;
    expect(cfoo).toMatchObject({ type: "library", version: "1:2.0-1+b1", purl: "pkg:deb/debian/libfoo1@1:2.0-1%2Bb1?arch=amd64" });
    expect(cfoo.licenses).toEqual([{ license: { id: "GPL-2.0-or-later" } }, { license: { id: "MIT" } }, { license: { name: "GPL-2+ or Artistic" } }]);
  });

  it("list kiln's packages by image digest, the script's source by URL, version and sha256, and the build graph", () => {
    const image = spdx.packages[0]!;
    expect(image).toMatchObject({ name: "sbomtest-rootfs", versionInfo: "1.0" });
    expect(rel("SPDXRef-DOCUMENT", "DESCRIBES", image.SPDXID)).toBe(true);
    const [app, base, etc] = ["app", "base", "etc"].map((n) => byName(n)!);
    for (const k of [app, base, etc]) {
      expect(rel(image.SPDXID, "CONTAINS", k!.SPDXID)).toBe(true);
      expect(k!.checksums![0]!.checksumValue).toMatch(/^[0-9a-f]{64}$/);
      expect(k!.externalRefs![0]!.referenceLocator).toMatch(new RegExp(`^pkg:oci/${k!.name}@sha256:${k!.checksums![0]!.checksumValue}\\?arch=amd64&tag=[0-9a-f]{40}$`));
    }
    expect(app!.versionInfo).toBe("3.1");
    expect(app!.downloadLocation).toBe(p.source.url);
    expect(rel(app!.SPDXID, "DEPENDS_ON", base!.SPDXID)).toBe(true);
    expect(rel(base!.SPDXID, "CONTAINS", byName("libfoo1")!.SPDXID)).toBe(true);
    expect(rel(base!.SPDXID, "CONTAINS", byName("tool")!.SPDXID)).toBe(true);
    const src = spdx.packages.find((x) => x.downloadLocation === p.source.url && x.name === "app-3.1.tar.gz")!;
    expect(src).toMatchObject({ versionInfo: "3.1", checksums: [{ algorithm: "SHA256", checksumValue: p.source.sha256 }] });
    expect(rel(app!.SPDXID, "GENERATED_FROM", src.SPDXID)).toBe(true);
    // CycloneDX: the same facts
    const capp = cdx.components.find((c) => c.name === "app")!;
    expect(capp.externalReferences).toEqual([expect.objectContaining({ url: p.source.url, hashes: [{ alg: "SHA-256", content: p.source.sha256 }] })]);
    expect(cdx.dependencies.find((d) => d.ref === capp["bom-ref"])!.dependsOn).toEqual(["kiln-package:base"]);
    expect(cdx.dependencies.find((d) => d.ref === "kiln-package:base")!.dependsOn.sort()).toEqual(["pkg:deb/debian/libfoo1@1:2.0-1%2Bb1?arch=amd64", "pkg:deb/debian/tool@3.4-2?arch=amd64"]);
  });

  it("list every file of the image with the SHA-1 and SHA-256 of its bytes", async () => {
    const files = await tarFiles(join(out, "rootfs.tar"));
    files.delete("usr/share/sbom/rootfs.spdx.json");
    files.delete("usr/share/sbom/rootfs.cdx.json");
    expect(spdx.files.map((f) => f.fileName).sort()).toEqual([...files.keys()].map((n) => `./${n}`).sort());
    for (const f of spdx.files) {
      const bytes = files.get(f.fileName.slice(2))!;
      expect(f.checksums).toEqual([{ algorithm: "SHA1", checksumValue: sha1(bytes) }, { algorithm: "SHA256", checksumValue: sha256(bytes) }]);
    }
    expect(spdx.files.map((f) => f.fileName)).toContain("./usr/bin/tool-copy");
    const motd = cdx.components.find((c) => c.name === "/etc/motd")!;
    expect(motd).toMatchObject({ type: "file", hashes: [{ alg: "SHA-1", content: sha1("hello sbom\n") }, { alg: "SHA-256", content: sha256("hello sbom\n") }] });
  });

  it("have no random ids and no wall-clock time: namespace and serial number come from the content, the time is SOURCE_DATE_EPOCH", async () => {
    expect(spdx.creationInfo.created).toBe("2023-11-14T22:13:20Z");
    expect(cdx.metadata.timestamp).toBe("2023-11-14T22:13:20Z");
    expect(spdx.documentNamespace).toMatch(/^https:\/\/spdx\.org\/spdxdocs\/sbomtest-rootfs-amd64-kvm-generic-[0-9a-f-]{36}$/);
    expect(cdx.serialNumber).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // the ids are the UUIDs of the documents' text, filled in for the placeholder
    expect(spdx.documentNamespace).not.toContain(SELF_ID);
    expect(cdx.serialNumber).not.toContain(SELF_ID);
    // a second build in another folder, store, time zone and umask gives the same bytes
    const again = join(await tempDir("kiln-sbom-again"), "deeper", "proj");
    await cp(p.dir, again, { recursive: true, filter: (s) => !/\/(out|images\/out)(\/|$)/.test(s) });
    await lockAndBuild(again, await tempDir("kiln-sbom-store2"), ["rootfs"], { umask: "077", tz: "Asia/Kolkata" });
    const out2 = join(again, "out/amd64/kvm-generic");
    for (const f of ["rootfs.spdx.json", "rootfs.cdx.json", "rootfs.tar", "rootfs.tar.provenance.json", "rootfs.img.provenance.json"]) {
      expect(sha256(await readFile(join(out2, f))), f).toBe(sha256(await readFile(join(out, f))));
    }
  });

  it("follow images.sbom: one format, not embedded, no file list; false turns them off", async () => {
    const only = await writeProject({ ...p.files, "kiln.yml": `${p.files["kiln.yml"]}images:\n  sbom: {formats: [cyclonedx], path: false, files: false}\n` });
    await lockAndBuild(only, await tempDir("kiln-sbom-store3"), ["rootfs.tar"]);
    const dir = join(only, "out/amd64/kvm-generic");
    expect((await readdir(dir)).sort()).toEqual(["rootfs.cdx.json", "rootfs.tar", "rootfs.tar.provenance.json"]);
    const bom = JSON.parse(await readFile(join(dir, "rootfs.cdx.json"), "utf8")) as CdxBom;
    expect(validateCycloneDx(bom)).toEqual([]);
    expect(bom.components.filter((c) => c.type === "file")).toEqual([]);
    expect([...(await tarFiles(join(dir, "rootfs.tar"))).keys()].filter((n) => n.includes("sbom"))).toEqual([]);

    const none = await writeProject({ ...p.files, "kiln.yml": `${p.files["kiln.yml"]}images:\n  sbom: false\n` });
    await lockAndBuild(none, await tempDir("kiln-sbom-store4"), ["rootfs.tar"]);
    expect((await readdir(join(none, "out/amd64/kvm-generic"))).sort()).toEqual(["rootfs.tar", "rootfs.tar.provenance.json"]);
  });
});
