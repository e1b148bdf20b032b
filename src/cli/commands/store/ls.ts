import type { Command } from "commander";
import { REF_ANNOTATION, USED_ANNOTATION } from "../../../store/layout.js";
import { openStore } from "../../context.js";
import { action, type Invocation } from "../../main.js";
import { table } from "../../output.js";

export function registerStoreLs(store: Command): void {
  const cmd = store.command("ls").description("list the images in the store");
  cmd.action(
    action(cmd, async (inv: Invocation) => {
      const s = await openStore(inv.globals);
      const idx = await s.readIndex();
      const rows = idx.manifests.map((m) => ({ ref: m.annotations?.[REF_ANNOTATION] ?? "", digest: m.digest, arch: m.platform?.architecture, used: m.annotations?.[USED_ANNOTATION] }));
      const text = [table([["REF", "ARCH", "USED", "DIGEST"], ...rows.map((r) => [r.ref, r.arch ?? "-", r.used ?? "-", r.digest.slice(0, 19)])]), `${rows.length} images in ${s.root}`].join("\n");
      return { data: { store: s.root, images: rows }, text };
    }),
  );
}
