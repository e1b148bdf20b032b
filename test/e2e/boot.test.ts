import { execa } from "execa";
import { cp, readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { kiln, REPO, tempDir } from "../helpers/kiln.js";

/**
 * The proof that the pipeline is real: the example OS (examples/kiln-os: a Debian kernel,
 * busybox, runc, GRUB, our init) is built from pinned Debian packages and booted under QEMU
 * with UEFI firmware until its containers print their markers.
 */
let dir = "";
let store = "";

beforeAll(async () => {
  dir = join(await tempDir("kiln-os"), "kiln-os");
  store = await tempDir("kiln-os-store");
  await cp(join(REPO, "examples/kiln-os"), dir, { recursive: true, filter: (src) => !/\/(out|images\/out)(\/|$)/.test(src) });
}, 300_000);

async function buildAndBoot(knobs: string[]): Promise<{ console: string; seconds: number }> {
  const b = await kiln(["-C", dir, "build", "live-raw", ...knobs], { store });
  if (b.code !== 0 && /E_DEBIAN_GONE/.test(b.stderr)) {
    // a Debian point release removed a pinned version: pin what the mirror has now (as scripts/example.mjs does)
    expect((await kiln(["-C", dir, "lock", "--update"], { store })).code).toBe(0);
    return buildAndBoot(knobs);
  }
  expect(b.code, b.stderr).toBe(0);
  const r = await kiln(["-C", dir, "--json", "run", "live", ...knobs, "--expect", "KILN-SERVICE-OK", "--timeout", "240"], { store });
  expect(r.code, r.stderr + r.stdout).toBe(0);
  const result = JSON.parse(r.stdout.trim().split("\n").pop()!) as { data: { log: string; seconds: number } };
  return { console: await readFile(result.data.log, "utf8"), seconds: result.data.seconds };
}

describe("the example OS boots", () => {
  it("live (squashfs): onboot container with the config value, then the service", async () => {
    const { console } = await buildAndBoot([]);
    expect(console).toContain("kiln-initramfs: root is /dev/vda2");
    expect(console).toContain("kiln-init: config mounted at /var/config");
    const onboot = console.indexOf("KILN-ONBOOT-OK");
    const service = console.indexOf("KILN-SERVICE-OK");
    expect(onboot).toBeGreaterThan(0);
    expect(console).toContain("KILN-CONFIG greeting=hello-from-config");
    expect(service).toBeGreaterThan(onboot);
  }, 600_000);

  it("ROOTFS_FORMAT=ext4 boots too", async () => {
    const { console } = await buildAndBoot(["ROOTFS_FORMAT=ext4"]);
    expect(console).toContain("KILN-ONBOOT-OK");
    expect(console).toContain("KILN-SERVICE-OK");
  }, 600_000);

  it("boots the B slot when its GPT priority is higher (EVE's A/B choice)", async () => {
    const raw = join(dir, "out/amd64/kvm-generic/live.raw");
    const copy = join(await tempDir(), "ab.raw");
    await cp(raw, copy);
    // swap the slots' priorities: IMGA 0, IMGB 3
    await execa("sgdisk", ["-A", "2:clear:49", "-A", "3:set:48", "-A", "3:set:49", copy]);
    const r = await kiln(["run", copy, "--expect", "KILN-SERVICE-OK", "--timeout", "240"], { store });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("kiln-initramfs: root is /dev/vda3");
  }, 600_000);

  it("kiln run says what it saw when the expected line does not come", async () => {
    const r = await kiln(["-C", dir, "run", "live", "--expect", "THIS-NEVER-APPEARS", "--timeout", "8"], { store });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error[E_BOOT_TIMEOUT]: no match for /THIS-NEVER-APPEARS/ within 8 s");
    expect(r.stderr).toMatch(/hint: the whole console is in .*console\.log/);
  }, 120_000);
});
