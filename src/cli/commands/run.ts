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

/** live / installer / a file → the image to boot and its format. */
async function pickImage(what: string, dir: string): Promise<{ file: string; format: string }> {
  const fmt = (f: string) => (f.endsWith(".qcow2") ? "qcow2" : f.endsWith(".vdi") ? "vdi" : f.endsWith(".vhdx") ? "vhdx" : "raw");
  if (what === "live") {
    for (const name of ["live.raw", "live.qcow2"]) if (await exists(join(dir, name))) return { file: join(dir, name), format: fmt(name) };
    if (await exists(join(dir, "live.img"))) {
      const target = await readlink(join(dir, "live.img"));
      return { file: join(dir, target), format: fmt(target) };
    }
    throw new KilnError("E_NOT_BUILT", `no live image in ${dir}`, { hint: "run kiln build live (with the same knobs) first" });
  }
  if (what === "installer") {
    for (const name of ["installer.raw", "installer.iso"]) if (await exists(join(dir, name))) return { file: join(dir, name), format: "raw" };
    throw new KilnError("E_NOT_BUILT", `no installer image in ${dir}`, { hint: "run kiln build installer first" });
  }
  const file = resolve(what);
  if (!(await exists(file))) throw new KilnError("E_USAGE", `no image '${what}'`, { hint: "kiln run live | installer | FILE" });
  return { file, format: fmt(file) };
}

export function registerRun(program: Command): void {
  const cmd = program
    .command("run")
    .description("boot an image in QEMU (UEFI firmware, serial console here and in a log file)")
    .argument("[image]", "live (default), installer, or an image file", "live")
    .argument("[knobs...]", "KNOB=VALUE: which variant's image (ZARCH, HV, PLATFORM …)")
    .option("--timeout <sec>", "give up after this many seconds", "120")
    .option("--expect <regex>", "exit 0 as soon as the console matches; non-zero on timeout")
    .option("--disk <file>", "an extra disk (raw or qcow2), e.g. the target of an installer (repeatable)", collect, [])
    .option("--mem <MiB>", "memory", "512")
    .option("--cpus <n>", "virtual CPUs", "1")
    .option("--accel <auto|kvm|tcg>", "KVM when usable (auto), else TCG", "auto")
    .option("--log <file>", "console log (default: out/<arch>/<variant>/console.log)")
    .option("--keep-changes", "boot the image itself instead of a throw-away overlay");
  cmd.action(
    action(cmd, async (inv: Invocation, image: string, words: string[], opts: { timeout: string; expect?: string; disk: string[]; mem: string; cpus: string; accel: string; log?: string; keepChanges?: boolean }) => {
      const { knobs } = splitKnobWords(words);
      if (knobs.ZARCH) inv.globals.arch = knobs.ZARCH;
      let arch = inv.globals.arch ?? (process.arch === "arm64" ? "arm64" : "amd64");
      let dir = resolve(".");
      if (image === "live" || image === "installer") {
        const project = await loadProject(resolve(inv.globals.dir ?? "."));
        const variant = resolveVariant(project, { ...knobs, ZARCH: inv.globals.arch ?? knobs.ZARCH, ROOTFS_VERSION: "-" });
        arch = variant.arch;
        dir = join(inv.globals.out ? resolve(inv.globals.out) : join(project.root, "out"), variant.arch, variant.name);
      }
      const img = await pickImage(image, dir);
      if (!["auto", "kvm", "tcg"].includes(opts.accel)) throw new KilnError("E_USAGE", `--accel must be auto, kvm or tcg, not '${opts.accel}'`);
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
        disks: opts.disk.map((d) => ({ file: resolve(d), format: d.endsWith(".qcow2") ? "qcow2" : "raw" })),
        memMiB: Number(opts.mem),
        cpus: Number(opts.cpus),
        accel: opts.accel as "auto" | "kvm" | "tcg",
        workDir: join(dir, ".run"),
        serialLog: opts.log ? resolve(opts.log) : join(dir, "console.log"),
        snapshot: !opts.keepChanges,
        expect,
        timeoutSec: Number(opts.timeout),
        echo: !inv.globals.json && !inv.globals.quiet,
        bus: inv.bus,
      });
      const text = res.matched ? `\nkiln: matched /${expect!.source}/ after ${res.seconds.toFixed(1)} s (${res.accel})` : `\nkiln: the virtual machine stopped after ${res.seconds.toFixed(1)} s`;
      return { data: { image: img.file, ...res }, text };
    }),
  );
}
