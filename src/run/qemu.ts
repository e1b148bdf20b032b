import { access, constants, copyFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { KilnError } from "../core/errors.js";
import { aptHint, whichTool } from "../core/tools.js";

/** Firmware and machine per architecture (Debian's ovmf and qemu-efi-aarch64 packages). */
export const MACHINES: Record<string, { qemu: string; machine: string; cpu: string; code: string[]; vars: string[]; pkgs: string[] }> = {
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
    cpu: "max",
    code: ["/usr/share/AAVMF/AAVMF_CODE.fd"],
    vars: ["/usr/share/AAVMF/AAVMF_VARS.fd"],
    pkgs: ["qemu-system-arm", "qemu-efi-aarch64"],
  },
};

async function firstExisting(paths: string[]): Promise<string | undefined> {
  for (const p of paths) if (await access(p).then(() => true, () => false)) return p;
  return undefined;
}

/** KVM only where it can work: /dev/kvm usable and the CPU offers vmx/svm (TCG otherwise). */
export async function kvmUsable(arch: string): Promise<boolean> {
  if (arch !== "amd64" || process.arch !== "x64") return false;
  if (!(await access("/dev/kvm", constants.R_OK | constants.W_OK).then(() => true, () => false))) return false;
  const cpuinfo = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
  return /\b(vmx|svm)\b/.test(cpuinfo);
}

export interface QemuOptions {
  arch: string;
  image: string;
  format: string;
  disks: { file: string; format: string }[];
  memMiB: number;
  cpus: number;
  accel: "auto" | "kvm" | "tcg";
  workDir: string;
  serialLog: string;
  /** Boot from a throw-away overlay (the image is not changed). */
  snapshot: boolean;
}

/** The QEMU command line for an EFI boot with the serial console on stdio. */
export async function qemuCommand(o: QemuOptions): Promise<{ cmd: string; args: string[]; accel: string }> {
  const m = MACHINES[o.arch];
  if (!m) throw new KilnError("E_USAGE", `kiln run does not know how to boot ${o.arch}`);
  const qemu = await whichTool(m.qemu);
  const code = await firstExisting(m.code);
  const varsSrc = await firstExisting(m.vars);
  if (!qemu || !code || !varsSrc) {
    const what = !qemu ? m.qemu : "UEFI firmware";
    throw new KilnError("E_TOOL_MISSING", `${what} is not installed`, { hint: aptHint(m.pkgs) });
  }
  const vars = join(o.workDir, "efivars.fd");
  await copyFile(varsSrc, vars);
  const kvm = o.accel === "kvm" || (o.accel === "auto" && (await kvmUsable(o.arch)));
  const args = [
    "-machine", `${m.machine},accel=${kvm ? "kvm" : "tcg"}`,
    "-cpu", kvm ? "host" : m.cpu,
    "-m", String(o.memMiB),
    "-smp", String(o.cpus),
    "-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${code}`,
    "-drive", `if=pflash,format=raw,unit=1,file=${vars}`,
    "-drive", `file=${o.image},format=${o.format},if=virtio${o.snapshot ? ",snapshot=on" : ""}`,
    ...o.disks.flatMap((d) => ["-drive", `file=${d.file},format=${d.format},if=virtio`]),
    "-display", "none",
    "-serial", "stdio",
    "-monitor", "none",
    "-no-reboot",
    "-nic", "none",
  ];
  return { cmd: qemu, args, accel: kvm ? "kvm" : "tcg" };
}
