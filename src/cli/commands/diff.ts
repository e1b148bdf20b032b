import type { Command } from "commander";
import { Option } from "commander";
import { KilnError } from "../../core/errors.js";
import { action, type Invocation } from "../main.js";

interface DiffFlags {
  ignore?: string[];
  preset?: string;
}

export function registerDiff(program: Command): void {
  const cmd = program
    .command("diff")
    .description("compare two rootfs.tar, rootfs.img (squashfs, ext4) or disk images (raw GPT, qcow2), without root")
    .argument("<a>", "the old image")
    .argument("<b>", "the new image")
    .option("--ignore <glob>", "hide paths matching GLOB (repeatable; `**` spans folders)", (v: string, prev: string[] = []) => [...prev, v])
    .addOption(new Option("--preset <name>", "compare as a project's own diff tool does").choices(["eve"]))
    .addHelpText("after", "\nExit codes: 0 no differences, 1 differences, 2 bad input. See docs/diff.md.");
  cmd.action(
    action(cmd, async (_inv: Invocation, a: string, b: string) => {
      const flags = cmd.opts<DiffFlags>();
      if (flags.preset !== undefined && flags.preset !== "eve") throw new KilnError("E_USAGE", `unknown preset ${flags.preset}`);
      const { diffImages, differs } = await import("../../diff/index.js");
      const { renderDiff } = await import("../../diff/render.js");
      const res = await diffImages(a, b, { ignore: flags.ignore ?? [], preset: flags.preset === "eve" ? "eve" : undefined });
      return { data: res, text: renderDiff(res), exit: differs(res) ? 1 : 0 };
    }),
  );
}
