import type { Command } from "commander";
import { registerStoreFsck } from "./fsck.js";
import { registerStoreGc } from "./gc.js";
import { registerStoreLs } from "./ls.js";

export function registerStore(program: Command): void {
  const store = program.command("store").description("inspect and maintain the OCI store (--store, $KILN_STORE, ~/.cache/kiln)");
  registerStoreLs(store);
  registerStoreGc(store);
  registerStoreFsck(store);
}
