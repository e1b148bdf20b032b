import type { Command } from "commander";
import { access, readlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { loadProject } from "../../config/project.js";
import { KilnError } from "../../core/errors.js";
import { boot } from "../../run/boot.js";
import { resolveVariant, splitKnobWords } from "../../variant/knobs.js";
import { action, type Invocation } from "../main.js";
import { collect } from "./build.js";

const exists = (p: string) => access(p).then(() => true, () => false);

/** The QEMU format of an image file, from its name; an .iso is a CD-ROM. */
export function imageFormat(f: string): { format: string; cdrom: boolean } {
  const lower = f.toLowerCase();
  if (lower.endsWith(".iso")) return { format: "raw", cdrom: true };
  return { format: lower.endsWith(".qcow2") ? "qcow2" : lower.endsWith(".vdi") ? "vdi" : lower.endsWith(".vhdx") ? "vhdx" : "raw", cdrom: false };
}

const IMAGE_WORDS = ["live", "installer", "installer-raw", "installer-iso"];

/** live / installer / installer-iso / a file → the image to boot and its format. */
async function pickImage(what: string, dir: string): Promise<{ file: string; format: string; cdrom: boolean }> {
  const fmt = (f: string) => imageFormat(f).format;
  if (what === "live") {
    for (const name of ["live.raw", "live.qcow2"]) if (await exists(join(dir, name))) return { file: join(dir, name), format: fmt(name), cdrom: false };
    if (await exists(join(dir, "live.img"))) {
      const target = await readlink(join(dir, "live.img"));
      return { file: join(dir, target), format: fmt(target), cdrom: false };
    }
    throw new KilnError("E_NOT_BUILT", `no live image in ${dir}`, { hint: "run kiln build live (with the same knobs) first" });
  }
  if (what === "installer" || what === "installer-raw" || what === "installer-iso") {
    // installer: installer.raw, else installer.iso (as a CD-ROM); installer-raw / installer-iso: that one
    const names = what === "installer" ? ["installer.raw", "installer.iso"] : [what === "installer-iso" ? "installer.iso" : "installer.raw"];
    for (const name of names) if (await exists(join(dir, name))) return { file: join(dir, name), ...imageFormat(name) };
    throw new KilnError("E_NOT_BUILT", `no ${names.join(" or ")} in ${dir}`, { hint: `run kiln build ${what === "installer-iso" ? "installer-iso" : "installer"} (with the same knobs) first` });
  }
  const file = resolve(what);
  if (!(await exists(file))) throw new KilnError("E_USAGE", `no image '${what}'`, { hint: `kiln run ${IMAGE_WORDS.join(" | ")} | FILE` });
  return { file, ...imageFormat(file) };
}

export function registerRun(program: Command): void {
  const cmd = program
    .command("run")
    .description("boot an image in QEMU (UEFI firmware, serial console here and in a log file)")
    .argument("[image]", "live (default), installer (installer.raw, else .iso), installer-iso, or an image file (.raw, .qcow2, .vdi, .vhdx; .iso boots as a CD-ROM)", "live")
    .argument("[knobs...]", "KNOB=VALUE: which variant's image (ZARCH, HV, PLATFORM …)")
    .option("--timeout <sec>", "give up after this many seconds", "120")
    .option("--expect <regex>", "exit 0 as soon as the console matches; non-zero on timeout")
    .option("--until-exit", "with --expect: after the match, wait for the VM to power off by itself (an installer); both are required")
    .option("--disk <file>", "an extra disk (raw or qcow2; .iso: a CD-ROM), e.g. the target of an installer; written to (repeatable)", collect, [])
    .option("--mem <MiB>", "memory", "512")
    .option("--cpus <n>", "virtual CPUs", "1")
    .option("--accel <auto|kvm|tcg>", "KVM when usable (auto), else TCG", "auto")
    .option("--log <file>", "console log (default: out/<arch>/<variant>/console.log for live, else IMAGE.console.log next to the image)")
    .option("--keep-changes", "boot the image itself instead of a throw-away overlay");
  cmd.action(
    action(cmd, async (inv: Invocation, image: string, words: string[], opts: { timeout: string; expect?: string; untilExit?: boolean; disk: string[]; mem: string; cpus: string; accel: string; log?: string; keepChanges?: boolean }) => {
      const { knobs } = splitKnobWords(words);
      if (knobs.ZARCH) inv.globals.arch = knobs.ZARCH;
      let arch = inv.globals.arch ?? (process.arch === "arm64" ? "arm64" : "amd64");
      let dir = "";
      if (IMAGE_WORDS.includes(image)) {
        const project = await loadProject(resolve(inv.globals.dir ?? "."));
        const variant = resolveVariant(project, { ...knobs, ZARCH: inv.globals.arch ?? knobs.ZARCH, ROOTFS_VERSION: "-" });
        arch = variant.arch;
        dir = join(inv.globals.out ? resolve(inv.globals.out) : join(project.root, "out"), variant.arch, variant.name);
      }
      const img = await pickImage(image, dir);
      if (!["auto", "kvm", "tcg"].includes(opts.accel)) throw new KilnError("E_USAGE", `--accel must be auto, kvm or tcg, not '${opts.accel}'`);
      for (const [name, v] of [["--timeout", opts.timeout], ["--mem", opts.mem], ["--cpus", opts.cpus]] as const) {
        if (!/^[1-9]\d*$/.test(v)) throw new KilnError("E_USAGE", `${name} must be a positive whole number, not '${v}'`);
      }
      if (opts.untilExit && !opts.expect) throw new KilnError("E_USAGE", "--until-exit needs --expect (without --expect, kiln run always waits for the VM to stop)");
      const disks = [];
      for (const d of opts.disk) {
        const file = resolve(d);
        if (!(await exists(file))) throw new KilnError("E_USAGE", `--disk ${d}: no such file`, { hint: "make a blank disk with: truncate -s 512M target.raw" });
        disks.push({ file, ...imageFormat(file) });
      }
      let expect: RegExp | undefined;
      try {
        expect = opts.expect ? new RegExp(opts.expect) : undefined;
      } catch (err) {
        throw new KilnError("E_USAGE", `--expect is not a valid regular expression: ${(err as Error).message}`);
      }
      const res = await boot({
        arch,
        image: img.file,
        format: img.format,
        cdrom: img.cdrom,
        disks,
        memMiB: Number(opts.mem),
        cpus: Number(opts.cpus),
        accel: opts.accel as "auto" | "kvm" | "tcg",
        serialLog: opts.log ? resolve(opts.log) : image === "live" ? join(dir, "console.log") : `${img.file}.console.log`,
        snapshot: !opts.keepChanges,
        expect,
        untilExit: opts.untilExit,
        timeoutSec: Number(opts.timeout),
        echo: !inv.globals.json && !inv.globals.quiet,
        bus: inv.bus,
      });
      const text = res.matched
        ? `\nkiln: matched /${expect!.source}/ after ${res.matchSeconds!.toFixed(1)} s (${res.accel})${opts.untilExit ? `; the virtual machine stopped after ${res.seconds.toFixed(1)} s` : ""}`
        : `\nkiln: the virtual machine stopped after ${res.seconds.toFixed(1)} s (${res.accel})`;
      return { data: { image: img.file, ...res }, text };
    }),
  );
}
