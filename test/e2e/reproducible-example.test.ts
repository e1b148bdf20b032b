import { cp, readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { jsonLines, kiln, REPO, tempDir } from "../helpers/kiln.js";
import { validateCycloneDx, validateSpdx } from "../sbom/schemas.js";

/**
 * The example OS (examples/kiln-os), built twice by `kiln verify-reproducible live installer`:
 * two copies of the project in differently named folders, two empty stores, TZ UTC and
 * Pacific/Chatham, umask 022 and 077, -j default and -j N/2, and the second build under
 * another host name (unshare -Ur --uts). Only the download cache is shared (the default
 * store's, or $KILN_DOWNLOADS), so after one run this works offline. Every output, SBOM
 * and provenance record must be byte-identical.
 */
let dir = "";
const env: Record<string, string> = process.env.KILN_DOWNLOADS ? { KILN_DOWNLOADS: process.env.KILN_DOWNLOADS } : {};

beforeAll(async () => {
  dir = join(await tempDir("kiln-os-repro"), "kiln-os");
  await cp(join(REPO, "examples/kiln-os"), dir, { recursive: true, filter: (src) => !/\/(out|images\/out)(\/|$)/.test(src) });
}, 60_000);

interface Result {
  identical: boolean;
  hostname: boolean;
  outputs: { path: string; a: string | null; b: string | null }[];
  kept?: string[];
}

async function verify(): Promise<{ code: number; result?: Result; stderr: string }> {
  const r = await kiln(["-C", dir, "--json", "verify-reproducible", "live", "installer", "--keep"], { env });
  if (r.code !== 0 && /E_DEBIAN_GONE/.test(r.stderr)) {
    // a Debian point release removed a pinned version: pin what the mirror has now (as the boot test does)
    expect((await kiln(["-C", dir, "lock", "--update"], { env })).code).toBe(0);
    return verify();
  }
  const last = jsonLines(r.stdout).pop() as { type: string; data?: Result } | undefined;
  return { code: r.code, result: last?.type === "result" ? last.data : undefined, stderr: r.stderr };
}

describe("the example OS is reproducible", () => {
  it("live and installer: every output, SBOM and provenance record is identical across two isolated builds", async () => {
    const { code, result, stderr } = await verify();
    expect(code, stderr).toBe(0);
    expect(result!.identical).toBe(true);
    expect(result!.hostname).toBe(true);
    const names = result!.outputs.map((o) => o.path);
    for (const n of ["rootfs.tar", "rootfs.img", "config.img", "efi.img", "live.raw", "live.qcow2", "installer.tar", "rootfs_installer.img", "installer-efi.img", "installer.raw"]) {
      expect(names).toContain(`amd64/kvm-generic/${n}`);
      expect(names).toContain(`amd64/kvm-generic/${n}.provenance.json`);
    }
    for (const n of ["rootfs.spdx.json", "rootfs.cdx.json", "installer.spdx.json", "installer.cdx.json"]) expect(names).toContain(`amd64/kvm-generic/${n}`);
    for (const o of result!.outputs) expect(o.b, o.path).toBe(o.a);

    // the SBOMs of the kept tree are valid and list what kiln.lock pins for the packages in the image
    const out = join(result!.kept![0]!, "kiln-os", "out", "amd64", "kvm-generic");
    const spdx = JSON.parse(await readFile(join(out, "rootfs.spdx.json"), "utf8")) as { packages: { name: string; versionInfo?: string; externalRefs?: { referenceLocator: string }[] }[] };
    expect(validateSpdx(spdx)).toEqual([]);
    expect(validateCycloneDx(JSON.parse(await readFile(join(out, "rootfs.cdx.json"), "utf8")))).toEqual([]);
    const lock = JSON.parse(await readFile(join(dir, "kiln.lock"), "utf8")) as { recipes: Record<string, { archs: Record<string, { name: string; version: string }[]> }> };
    // rootfs: busybox, crun and grub's modules, and the kernel built from linux-deb (a build dependency)
    const pinned = ["busybox-deb", "crun-deb", "grub-deb", "linux-deb"].flatMap((r) => lock.recipes[r]!.archs.amd64!.map((d) => `${d.name} ${d.version}`));
    const debs = spdx.packages.filter((x) => x.externalRefs?.some((e) => e.referenceLocator.startsWith("pkg:deb/")));
    expect(debs.map((d) => `${d.name} ${d.versionInfo}`).sort()).toEqual([...new Set(pinned)].sort());
    const kilnPkgs = spdx.packages.filter((x) => x.externalRefs?.some((e) => e.referenceLocator.startsWith("pkg:oci/"))).map((x) => x.name);
    expect(kilnPkgs.sort()).toEqual(["busybox-deb", "crun-deb", "grub", "grub-deb", "hello-onboot", "hello-service", "init", "kernel", "linux-deb"]);
    const { rm } = await import("node:fs/promises");
    await rm(join(result!.kept![0]!, ".."), { recursive: true, force: true });
  }, 300_000);
});
