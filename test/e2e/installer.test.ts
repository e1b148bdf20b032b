import { execa } from "execa";
import { cp, open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { kiln, REPO, tempDir } from "../helpers/kiln.js";

/**
 * EVE's installer flow with the example OS: installer.raw (and installer.iso, booted as a CD)
 * is booted with a blank second disk; its onboot container lays out EVE's live GPT on that disk,
 * writes the live ESP, root file system (both slots) and config, prints KILN-INSTALL-DONE and
 * powers off. Then the installed disk boots by itself to the live system's markers.
 */
let dir = "";
let store = "";
let out = "";

async function build(targets: string[]): Promise<void> {
  const b = await kiln(["-C", dir, "build", ...targets], { store });
  if (b.code !== 0 && /E_DEBIAN_GONE/.test(b.stderr)) {
    // a Debian point release removed a pinned version: pin what the mirror has now
    expect((await kiln(["-C", dir, "lock", "--update"], { store })).code).toBe(0);
    return build(targets);
  }
  expect(b.code, b.stderr).toBe(0);
}

beforeAll(async () => {
  dir = join(await tempDir("kiln-os-installer"), "kiln-os");
  store = await tempDir("kiln-os-installer-store");
  out = join(dir, "out/amd64/kvm-generic");
  await cp(join(REPO, "examples/kiln-os"), dir, { recursive: true, filter: (src) => !/\/(out|images\/out)(\/|$)/.test(src) });
  await build(["installer", "installer-iso"]);
}, 600_000);

async function blankDisk(): Promise<string> {
  const file = join(await tempDir("kiln-target"), "target.raw");
  await execa("truncate", ["-s", "512M", file]);
  return file;
}

/** Run the installer (installer.raw or installer-iso) onto `target` until it powers off; the console. */
async function install(image: string, target: string): Promise<string> {
  const r = await kiln(["-C", dir, "--json", "run", image, "--disk", target, "--expect", "KILN-INSTALL-DONE", "--until-exit", "--timeout", "240"], { store });
  expect(r.code, r.stderr + r.stdout).toBe(0);
  const result = JSON.parse(r.stdout.trim().split("\n").pop()!) as { data: { log: string; matched: boolean; exitCode: number } };
  expect(result.data.matched).toBe(true);
  expect(result.data.exitCode).toBe(0);
  return readFile(result.data.log, "utf8");
}

/** EVE's live layout, as the installer made it. */
async function checkLayout(target: string): Promise<void> {
  const v = await execa("sgdisk", ["-v", target]);
  expect(v.stdout).toContain("No problems found");
  const p = (await execa("sgdisk", ["-p", target])).stdout;
  const rows = p.split("\n").filter((l) => /^\s+\d+\s/.test(l)).map((l) => l.trim().split(/\s+/));
  expect(rows.map((r) => [r[0], r.slice(6).join(" ")])).toEqual([["1", "EFI System"], ["2", "IMGA"], ["3", "IMGB"], ["4", "CONFIG"], ["5", "P3"]]);
  const info = async (n: number) => (await execa("sgdisk", ["-i", String(n), target])).stdout;
  const types = ["C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6", "5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6", "13307E62-CD9C-4920-8F9B-91B45828B798", "5F24425A-2DFA-11E8-A270-7B663FACCC2C"];
  for (const [i, type] of types.entries()) expect(await info(i + 1)).toContain(`Partition GUID code: ${type}`);
  const efi = await info(1);
  expect(efi).toMatch(/Partition size: 73728 sectors \(36\.0 MiB\)/);
  expect(await info(5)).toMatch(/Partition size: 16384 sectors \(8\.0 MiB\)/);
  // IMGA: gptprio priority 2 (bit 49) and successful (bit 56); IMGB: priority 0
  expect(await info(2)).toContain("Attribute flags: 0102000000000000");
  expect(await info(3)).toContain("Attribute flags: 0000000000000000");
  // IMGA and IMGB are sized for rootfs.img (1 MiB aligned) and hold it
  const rootfs = await readFile(join(out, "rootfs.img"));
  const mib = Math.ceil(rootfs.length / 2 ** 20);
  expect(await info(2)).toContain(`Partition size: ${mib * 2048} sectors`);
  const start = Number(/First sector: (\d+)/.exec(await info(3))![1]);
  const fh = await open(target, "r");
  try {
    const buf = Buffer.alloc(rootfs.length);
    await fh.read(buf, 0, buf.length, start * 512);
    expect(buf.equals(rootfs)).toBe(true);
  } finally {
    await fh.close();
  }
}

/** The installed disk boots by itself to the live system's markers. */
async function bootTarget(target: string): Promise<void> {
  const r = await kiln(["--json", "run", target, "--expect", "KILN-SERVICE-OK", "--timeout", "240"], { store });
  expect(r.code, r.stderr + r.stdout).toBe(0);
  const result = JSON.parse(r.stdout.trim().split("\n").pop()!) as { data: { log: string } };
  const console = await readFile(result.data.log, "utf8");
  expect(console).toContain("kiln-initramfs: root is /dev/vda2");
  expect(console).toContain("KILN-ONBOOT-OK");
  expect(console).toContain("KILN-CONFIG greeting=hello-from-config");
  expect(console.indexOf("KILN-SERVICE-OK")).toBeGreaterThan(console.indexOf("KILN-ONBOOT-OK"));
}

describe("the installer installs the live system", () => {
  it("installer.raw onto a blank second disk, which then boots", async () => {
    const target = await blankDisk();
    const console = await install("installer", target);
    expect(console).toContain("kiln-installer: installing onto /dev/vdb");
    expect(console).not.toContain("KILN-INSTALL-FAILED");
    await checkLayout(target);
    await bootTarget(target);
  }, 600_000);

  it("installer.iso, booted as a CD, onto a blank disk, which then boots", async () => {
    const target = await blankDisk();
    const console = await install("installer-iso", target);
    expect(console).toContain("kiln-initramfs: root is /cdrom/installer.img");
    expect(console).toContain("kiln-installer: installing onto /dev/vda");
    await checkLayout(target);
    await bootTarget(target);
  }, 600_000);

  it("an installer that powers off without the marker fails kiln run --until-exit", async () => {
    // a 1 MiB target is too small: the installer says so and powers off without KILN-INSTALL-DONE
    const small = join(await tempDir("kiln-target"), "small.raw");
    await execa("truncate", ["-s", "1M", small]);
    const r = await kiln(["-C", dir, "run", "installer", "--disk", small, "--expect", "KILN-INSTALL-DONE", "--until-exit", "--timeout", "240"], { store });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error\[E_BOOT_EXITED\]: the virtual machine stopped after [\d.]+ s before \/KILN-INSTALL-DONE\/ appeared/);
    expect(r.stdout).toContain("KILN-INSTALL-FAILED");
  }, 300_000);
});
