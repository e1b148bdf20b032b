import type { Command } from "commander";
import { registerPkgBuild } from "./build.js";
import { registerPkgList } from "./list.js";
import { registerPkgPush } from "./push.js";
import { registerPkgShowTag } from "./show-tag.js";

export function registerPkg(program: Command): void {
  const pkg = program.command("pkg").description("work with packages (pkg/NAME)");
  registerPkgBuild(pkg);
  registerPkgList(pkg);
  registerPkgShowTag(pkg);
  registerPkgPush(pkg);
}
