import { gunzipSync } from "node:zlib";
import type { Tree } from "./types.js";

/** What EVE's tools/rootfs-diff.sh deletes before diffing: the build's signing key and two files stamped with the build time. */
export const EVE_IGNORE = ["**/signing_key.*", "/etc/eve-release", "/etc/linuxkit-eve-config.yml"];

const MAGIC = Buffer.from("~Module signature appended~\n", "latin1");
/** struct module_signature: algo, hash, id_type, signer_len, key_id_len, pad[3], be32 sig_len. */
const SIG_STRUCT = 12;

/** A kernel module without its appended signature (unchanged when it has none). */
export function stripModuleSignature(ko: Buffer): Buffer {
  if (ko.length < MAGIC.length + SIG_STRUCT || !ko.subarray(ko.length - MAGIC.length).equals(MAGIC)) return ko;
  const s = ko.length - MAGIC.length - SIG_STRUCT;
  const signerLen = ko[s + 3]!;
  const keyIdLen = ko[s + 4]!;
  const sigLen = ko.readUInt32BE(s + 8);
  const start = s - sigLen - signerLen - keyIdLen;
  return start >= 0 ? ko.subarray(0, start) : ko;
}

/**
 * The kernel image with the module-signing certificate zeroed, as
 * rootfs-diff.sh does (gunzipped first when it is gzip, as arm64 kernels are).
 * The certificate is the tree's /lib/modules/<version>/signing_key.x509.
 */
export async function kernelWithoutKey(kernel: Buffer, tree: Tree): Promise<Buffer> {
  const certs = [...tree.entries.keys()].filter((p) => /^\/lib\/modules\/[^/]+\/signing_key\.x509$/.test(p));
  if (!certs.length) return kernel;
  const k = kernel[0] === 0x1f && kernel[1] === 0x8b ? gunzipSync(kernel) : Buffer.from(kernel);
  for (const c of certs) {
    const cert = await tree.read(c);
    if (!cert.length) continue;
    for (let i = k.indexOf(cert); i >= 0; i = k.indexOf(cert, i + cert.length)) k.fill(0, i, i + cert.length);
  }
  return k;
}

/** The bytes to compare for `path` under the eve preset. */
export async function eveContent(path: string, data: Buffer, tree: Tree): Promise<Buffer> {
  if (path.endsWith(".ko")) return stripModuleSignature(data);
  if (path === "/boot/kernel") return kernelWithoutKey(data, tree);
  return data;
}
