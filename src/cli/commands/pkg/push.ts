import type { Command } from "commander";
import { action, type Invocation } from "../../main.js";
import { type PushOptions, pushCommandOptions, pushPackages } from "../push.js";

export function registerPkgPush(pkg: Command): void {
  const cmd = pushCommandOptions(
    pkg.command("push").description("build (if needed) and push packages to a registry, like `linuxkit pkg push`").argument("[packages...]", "package names or pkg/NAME (default: all)"),
  );
  cmd.action(action(cmd, async (inv: Invocation, names: string[], opts: PushOptions) => pushPackages(inv, names, opts)));
}
