#!/usr/bin/env node
// Install the Debian packages a task needs, idempotently: only what is missing
// is installed, with sudo when not root. Used by `npm test`, `npm run example` and `npm run bench`.
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";

/** task → [tool to look for, Debian package that provides it] */
const NEEDS = {
  example: [["bash", "bash"], ["tar", "tar"], ["bwrap", "bubblewrap"], ["mksquashfs", "squashfs-tools"], ["mkfs.vfat", "dosfstools"], ["mcopy", "mtools"],
    ["qemu-img", "qemu-utils"], ["qemu-system-x86_64", "qemu-system-x86"], ["/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf"], ["grub-mkimage", "grub-common"],
    ["depmod", "kmod"], ["modprobe", "kmod"], ["cpio", "cpio"], ["xz", "xz-utils"], ["gpgv", "gpgv"], ["/usr/share/keyrings/debian-archive-keyring.gpg", "debian-archive-keyring"]],
  test: [["bash", "bash"], ["tar", "tar"], ["bwrap", "bubblewrap"], ["skopeo", "skopeo"], ["umoci", "umoci"], ["pgrep", "procps"],
    ["mksquashfs", "squashfs-tools"], ["unsquashfs", "squashfs-tools"], ["mkfs.ext4", "e2fsprogs"], ["debugfs", "e2fsprogs"], ["fakeroot", "fakeroot"],
    ["mkfs.erofs", "erofs-utils"], ["mkfs.vfat", "dosfstools"], ["fatlabel", "dosfstools"], ["mcopy", "mtools"], ["sgdisk", "gdisk"], ["qemu-img", "qemu-utils"], ["xorriso", "xorriso"],
    ["xz", "xz-utils"], ["zstd", "zstd"], ["gpgv", "gpgv"], ["docker-registry", "docker-registry"], ["htpasswd", "apache2-utils"],
    // Pygos packages (test/pygos): built with the host's gcc and Debian's aarch64 cross compiler, patched, checked with file(1)
    ["gcc", "gcc"], ["make", "make"], ["patch", "patch"], ["curl", "curl"], ["file", "file"], ["bzip2", "bzip2"], ["dpkg-source", "dpkg-dev"],
    ["aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"], ["/usr/aarch64-linux-gnu/include/stdio.h", "libc6-dev-arm64-cross"]],
};

// The tests build and boot the example too, also for arm64.
NEEDS.test.push(...NEEDS.example, ["qemu-system-aarch64", "qemu-system-arm"], ["/usr/share/AAVMF/AAVMF_CODE.fd", "qemu-efi-aarch64"]);
// The benchmarks run the example's work and the image formats through kiln and through the bare scripts
// beside it (bench/bare-*.sh: jq, sfdisk, dd …), timed and measured with GNU time.
NEEDS.bench = [...NEEDS.test, ["jq", "jq"], ["sfdisk", "fdisk"], ["/usr/bin/time", "time"]];

const task = process.argv[2] ?? "test";
const needs = NEEDS[task];
if (!needs) {
  console.error(`host-deps: unknown task '${task}' (one of: ${Object.keys(NEEDS).join(", ")})`);
  process.exit(2);
}

function has(tool) {
  if (tool.startsWith("/")) {
    try {
      accessSync(tool, constants.R_OK);
      return true;
    } catch {
      return false;
    }
  }
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin"])) {
    try {
      accessSync(`${dir}/${tool}`, constants.X_OK);
      return true;
    } catch {
      // keep looking
    }
  }
  return false;
}

const missing = [...new Set(needs.filter(([tool]) => !has(tool)).map(([, pkg]) => pkg))];
if (!missing.length) process.exit(0);
const root = process.getuid?.() === 0;
const prefix = root ? [] : ["sudo", "-n"];
console.error(`host-deps: installing ${missing.join(" ")} (apt-get)`);
const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
const run = (args) => spawnSync(prefix[0] ?? args[0], prefix.length ? [...prefix.slice(1), ...args] : args.slice(1), { stdio: "inherit", env });
if (run(["apt-get", "update", "-qq"]).status !== 0) console.error("host-deps: apt-get update failed; trying the install anyway");
const res = run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...missing]);
if (res.status !== 0) {
  console.error(`host-deps: could not install ${missing.join(" ")}; run: ${root ? "" : "sudo "}apt-get install -y ${missing.join(" ")}`);
  process.exit(1);
}
