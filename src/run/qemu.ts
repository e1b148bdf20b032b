import { access, constants, copyFile, readFile, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { KilnError } from "../core/errors.js";
import { aptHint, whichTool } from "../core/tools.js";

export interface Machine {
  qemu: string;
  machine: string;
  /** The CPU model under TCG (under KVM: host). */
  cpu: string;
  code: string[];
  vars: string[];
  /** pflash images must be exactly this size (QEMU's virt machine maps two 64 MiB flash banks). */
  flashSize?: number;
  pkgs: string[];
}

/** Firmware and machine per architecture (Debian's ovmf and qemu-efi-aarch64 packages). */
export const MACHINES: Record<string, Machine> = {
  amd64: {
    qemu: "qemu-system-x86_64",
    machine: "q35",
    cpu: "max",
    code: ["/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE.fd"],
    vars: ["/usr/share/OVMF/OVMF_VARS_4M.fd", "/usr/share/OVMF/OVMF_VARS.fd"],
    pkgs: ["qemu-system-x86", "ovmf"],
  },
  arm64: {
    qemu: "qemu-system-aarch64",
    machine: "virt",
    // pauth-impdef: QEMU's own pointer-authentication hash instead of the architected QARMA,
    // which is several times faster to emulate and invisible to the guest.
    cpu: "max,pauth-impdef=on",
    code: ["/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"],
    vars: ["/usr/share/AAVMF/AAVMF_VARS.fd"],
    flashSize: 64 * 1024 * 1024,
    pkgs: ["qemu-system-arm", "qemu-efi-aarch64"],
  },
};

async function firstExisting(paths: string[]): Promise<string | undefined> {
  for (const p of paths) if (await access(p).then(() => true, () => false)) return p;
  return undefined;
}

/** KVM only where it can work: the guest is the host's architecture, /dev/kvm is usable and (x86) the CPU offers vmx/svm. */
export async function kvmUsable(arch: string): Promise<boolean> {
  const native = (arch === "amd64" && process.arch === "x64") || (arch === "arm64" && process.arch === "arm64");
  if (!native) return false;
  if (!(await access("/dev/kvm", constants.R_OK | constants.W_OK).then(() => true, () => false))) return false;
  if (arch !== "amd64") return true;
  const cpuinfo = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
  return /\b(vmx|svm)\b/.test(cpuinfo);
}

export interface Drive {
  file: string;
  /** raw, qcow2, vdi, vhdx … (a CD-ROM is always raw). */
  format: string;
  /** A CD-ROM (an ISO 9660 image, read-only) rather than a disk. */
  cdrom?: boolean;
}

export interface QemuOptions {
  arch: string;
  /** The boot image: a disk, or a CD-ROM (an .iso). */
  image: string;
  format: string;
  cdrom?: boolean;
  /** Extra drives after the boot image (e.g. an installer's target disk); they are written to. */
  disks: Drive[];
  memMiB: number;
  cpus: number;
  accel: "auto" | "kvm" | "tcg";
  workDir: string;
  serialLog: string;
  /** Boot from a throw-away overlay (the image is not changed). */
  snapshot: boolean;
}

/** A pflash image of exactly `size` bytes: the file itself when it has that size, else a padded copy. */
async function flash(src: string, dest: string, size: number | undefined, copy: boolean): Promise<string> {
  const have = (await stat(src)).size;
  if (!copy && (size === undefined || have === size)) return src;
  await copyFile(src, dest);
  if (size !== undefined && have !== size) {
    if (have > size) throw new KilnError("E_TOOL_FAILED", `the firmware image ${src} is larger (${have} bytes) than the ${size}-byte flash`);
    await truncate(dest, size);
  }
  return dest;
}

/** The QEMU drive and device options for the boot image and the extra drives, in order (the boot image is the first disk). */
export function driveArgs(drives: (Drive & { snapshot?: boolean })[]): string[] {
  const args: string[] = [];
  let scsi = false;
  drives.forEach((d, i) => {
    if (d.cdrom) {
      // virtio-scsi on every machine (q35's AHCI CD is x86-only; the arm virt machine has no IDE):
      // the firmware boots it (El Torito), the guest needs virtio_scsi, sr_mod and isofs.
      if (!scsi) args.push("-device", "virtio-scsi-pci,id=scsi0");
      scsi = true;
      args.push("-drive", `if=none,id=cd${i},file=${d.file},format=raw,media=cdrom,readonly=on`);
      args.push("-device", `scsi-cd,bus=scsi0.0,drive=cd${i}${i === 0 ? ",bootindex=0" : ""}`);
    } else {
      // An explicit virtio-blk device with a boot index: the firmware boots it first instead of
      // trying other devices (with -nodefaults there are none; under TCG each try costs ~0.5 s).
      args.push("-drive", `if=none,id=hd${i},file=${d.file},format=${d.format}${d.snapshot ? ",snapshot=on" : ""}`);
      args.push("-device", `virtio-blk-pci,drive=hd${i}${i === 0 ? ",bootindex=0" : ""}`);
    }
  });
  return args;
}

/** The QEMU command line for an EFI boot with the serial console on stdio. */
export async function qemuCommand(o: QemuOptions): Promise<{ cmd: string; args: string[]; accel: string }> {
  const m = MACHINES[o.arch];
  if (!m) throw new KilnError("E_USAGE", `kiln run does not know how to boot ${o.arch} (it boots: ${Object.keys(MACHINES).join(", ")})`);
  const qemu = await whichTool(m.qemu);
  const codeSrc = await firstExisting(m.code);
  const varsSrc = await firstExisting(m.vars);
  if (!qemu || !codeSrc || !varsSrc) {
    const what = !qemu ? m.qemu : `the UEFI firmware for ${o.arch} (${[...m.code, ...m.vars].filter((p) => p.includes("CODE") || p.includes("VARS")).join(", ")})`;
    throw new KilnError("E_TOOL_MISSING", `${what} is not installed`, { hint: aptHint(m.pkgs) });
  }
  // The variables store is written by the firmware: always a private copy.
  const code = await flash(codeSrc, join(o.workDir, "efi-code.fd"), m.flashSize, false);
  const vars = await flash(varsSrc, join(o.workDir, "efivars.fd"), m.flashSize, true);
  const kvm = o.accel === "kvm" || (o.accel === "auto" && (await kvmUsable(o.arch)));
  const args = [
    // No default devices (q35's SATA CD-ROM, the NIC with its PXE ROM, VGA): the firmware would probe
    // each before the disk; -nodefaults cuts ~1 s of a TCG boot. Everything needed is listed here.
    "-nodefaults",
    "-machine", `${m.machine},accel=${kvm ? "kvm" : "tcg"}`,
    "-cpu", kvm ? "host" : m.cpu,
    "-m", String(o.memMiB),
    "-smp", String(o.cpus),
    "-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${code}`,
    "-drive", `if=pflash,format=raw,unit=1,file=${vars}`,
    ...driveArgs([{ file: o.image, format: o.cdrom ? "raw" : o.format, cdrom: o.cdrom, snapshot: o.snapshot && !o.cdrom }, ...o.disks]),
    "-display", "none",
    "-serial", "stdio",
    "-monitor", "none",
    "-no-reboot",
  ];
  return { cmd: qemu, args, accel: kvm ? "kvm" : "tcg" };
}
