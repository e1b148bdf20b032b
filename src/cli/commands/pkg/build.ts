import type { Command } from "commander";
import { KilnError } from "../../../core/errors.js";
import { action, type Invocation } from "../../main.js";
import { buildTargets } from "../build.js";

export function registerPkgBuild(pkg: Command): void {
  const cmd = pkg
    .command("build")
    .description("build packages (and what they depend on), like `linuxkit pkg build`")
    .argument("<packages...>", "package names or pkg/NAME");
  cmd.action(
    action(cmd, async (inv: Invocation, names: string[]) => {
      if (!names.length) throw new KilnError("E_USAGE", "name at least one package");
      return buildTargets(inv, names);
    }),
  );
}
