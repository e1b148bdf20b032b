import type { Command } from "commander";
import { KilnError } from "../../core/errors.js";
import { RegistryClient } from "../../oci/client.js";
import { formatRef, parseImageRef } from "../../oci/ref.js";
import { pullImage, registrySource, storeSource } from "../../oci/transfer.js";
import { openStore } from "../context.js";
import { action, type Invocation } from "../main.js";
import { table } from "../output.js";

/**
 * Pull images into the store, every blob verified against its digest before
 * it enters; an index with all its platforms unless --platform picks one. The
 * store ref is REPOSITORY:TAG (REPOSITORY@DIGEST when pulled by digest alone).
 */
export function registerPull(program: Command): void {
  const cmd = program
    .command("pull")
    .description("pull images (manifests, multi-arch indexes) from a registry into the store")
    .argument("<refs...>", "HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]")
    .option("--platform <arch>", "from an index, only this architecture's image (amd64, arm64, riscv64)")
    .option("--insecure", "plain HTTP (default only for localhost and 127.0.0.1)");
  cmd.action(
    action(cmd, async (inv: Invocation, refs: string[], opts: { platform?: string; insecure?: boolean }) => {
      if (!refs.length) throw new KilnError("E_USAGE", "name at least one image");
      const store = await openStore(inv.globals);
      const rows: { ref: string; stored: string; digest: string; mediaType: string }[] = [];
      for (const raw of refs) {
        const ref = parseImageRef(raw);
        const client = new RegistryClient(ref.host, { insecure: opts.insecure, log: (message) => inv.bus.emit({ type: "debug", message: `registry: ${message}` }) });
        const src = inv.globals.offline ? storeSource(store, formatRef(ref)) : registrySource(client, ref.repository, store);
        const got = await pullImage(src, store, ref.digest ?? ref.tag!, { arch: opts.platform });
        const desc = opts.platform ? got.manifest! : got.root;
        const stored = ref.tag ? `${ref.repository}:${ref.tag}` : `${ref.repository}@${ref.digest}`;
        await store.setRef(stored, desc);
        rows.push({ ref: formatRef(ref), stored, digest: desc.digest, mediaType: desc.mediaType });
      }
      return { data: { pulled: rows }, text: table([["IMAGE", "STORE REF", "DIGEST"], ...rows.map((r) => [r.ref, r.stored, r.digest])]) };
    }),
  );
}
