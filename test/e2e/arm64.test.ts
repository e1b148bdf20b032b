import { cp, readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { kiln, REPO, tempDir } from "../helpers/kiln.js";

/**
 * The example OS for arm64: built from Debian's arm64 packages on any host (nothing of the target
 * runs during the build), booted under qemu-system-aarch64 (virt machine, AAVMF, TCG on an x86
 * host) until the service prints its marker.
 */
// qemu-system-arm and qemu-efi-aarch64 are installed by `npm test` (scripts/host-deps.mjs): this test always runs.

let dir = "";
let store = "";

beforeAll(async () => {
  dir = join(await tempDir("kiln-os-arm64"), "kiln-os");
  store = await tempDir("kiln-os-arm64-store");
  await cp(join(REPO, "examples/kiln-os"), dir, { recursive: true, filter: (src) => !/\/(out|images\/out)(\/|$)/.test(src) });
}, 120_000);

describe("the example OS on arm64", () => {
  it("builds from Debian's arm64 packages and boots under qemu-system-aarch64 with AAVMF", async () => {
    let b = await kiln(["-C", dir, "build", "live-raw", "ZARCH=arm64"], { store });
    if (b.code !== 0 && /E_DEBIAN_GONE/.test(b.stderr)) {
      expect((await kiln(["-C", dir, "lock", "--update"], { store })).code).toBe(0);
      b = await kiln(["-C", dir, "build", "live-raw", "ZARCH=arm64"], { store });
    }
    expect(b.code, b.stderr).toBe(0);
    const r = await kiln(["-C", dir, "--json", "run", "live", "ZARCH=arm64", "--expect", "KILN-SERVICE-OK", "--timeout", "200"], { store });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const result = JSON.parse(r.stdout.trim().split("\n").pop()!) as { data: { log: string; accel: string } };
    const console = await readFile(result.data.log, "utf8");
    // the console is the PL011 (ttyAMA0): the cmdline names both consoles, ttyS0 does not exist here
    expect(console).toContain("kiln-initramfs: root is /dev/vda2");
    expect(console).toContain("KILN-ONBOOT-OK");
    expect(console).toContain("KILN-CONFIG greeting=hello-from-config");
    expect(console.indexOf("KILN-SERVICE-OK")).toBeGreaterThan(console.indexOf("KILN-ONBOOT-OK"));
  }, 240_000);
});
