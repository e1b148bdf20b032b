import { mkdir } from "node:fs/promises";
import { KilnError } from "../core/errors.js";
import { run } from "../core/exec.js";
import { indexStoreBlob } from "../compose/tarindex.js";
import type { Descriptor, Store } from "../store/layout.js";

/**
 * Unpack layers, in order, into a folder for use as a build sysroot: one host
 * tar reading all of them concatenated (`-i` reads past each end-of-archive),
 * so a package with twenty dependencies costs one process, not twenty (spawning
 * was most of a cold build's main-thread time). Ownership is not applied (no
 * root needed) and device nodes are skipped. Every entry is checked first from
 * the tars' own headers, so that neither ".." nor an absolute path nor a
 * symlink planted by an earlier entry or layer can make tar write outside.
 */
export async function unpackLayers(store: Store, layers: Descriptor[], dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  if (!layers.length) return;
  const links = new Set<string>();
  const devices = new Set<string>();
  // the headers of every layer read together (remembered per blob in the store), checked in order
  const indexes = await Promise.all(layers.map((layer) => indexStoreBlob(store, store.blobPath(layer.digest))));
  for (const [i, layer] of layers.entries()) {
    for (const e of indexes[i]!) {
      const name = e.name.replace(/^\.\//, "").replace(/\/+$/, "");
      const parts = name.split("/");
      if (name.startsWith("/") || parts.includes("..")) {
        throw new KilnError("E_PATH_ESCAPE", `layer ${layer.digest} has an entry outside its root: ${e.name}`);
      }
      for (let i = 1; i < parts.length; i++) {
        if (links.has(parts.slice(0, i).join("/"))) {
          throw new KilnError("E_PATH_ESCAPE", `layer ${layer.digest} writes ${e.name} through the symlink ${parts.slice(0, i).join("/")}`);
        }
      }
      if (e.type === "symlink") links.add(name);
      else links.delete(name);
      if (e.type === "character-device" || e.type === "block-device" || e.type === "fifo") devices.add(e.name);
    }
  }
  const tarArgs = [
    "-xif", "-", "-C", dest,
    "--no-same-owner", "--no-same-permissions", "--delay-directory-restore", "--warning=no-unknown-keyword",
    // device nodes need root to create; a sysroot never needs them
    "--no-wildcards", ...[...devices].sort().map((d) => `--exclude=${d}`),
  ];
  // --no-same-permissions applies the umask: a fixed one, so the caller's (077) never leaks into $SYSROOT and from there into outputs
  const script = `set -o pipefail; umask 022; cat "$@" | tar ${tarArgs.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ")}`;
  await run("bash", ["-c", script, "unpack", ...layers.map((l) => store.blobPath(l.digest))]);
}
