import { createHash } from "node:crypto";
import { eveContent } from "./eve.js";
import { octal } from "./modes.js";
import type { DiffOptions, DiffResult, Entry, FieldChange, Tree } from "./types.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function digest(tree: Tree, path: string, opts: DiffOptions): Promise<string> {
  let data = await tree.read(path);
  if (opts.preset === "eve") data = await eveContent(path, data, tree);
  return sha(data);
}

const dev = (e: Entry) => (e.dev ? `${e.dev[0]},${e.dev[1]}` : null);

/** The metadata fields that differ between two entries of the same path (content is compared separately). */
function metaFields(a: Entry, b: Entry): Record<string, FieldChange> {
  const f: Record<string, FieldChange> = {};
  if (a.type !== b.type) f.type = { a: a.type, b: b.type };
  if (a.mode !== undefined && b.mode !== undefined && a.mode !== b.mode) f.mode = { a: octal(a.mode), b: octal(b.mode) };
  if (a.uid !== undefined && b.uid !== undefined && a.uid !== b.uid) f.uid = { a: a.uid, b: b.uid };
  if (a.gid !== undefined && b.gid !== undefined && a.gid !== b.gid) f.gid = { a: a.gid, b: b.gid };
  if ((a.link ?? null) !== (b.link ?? null)) f.link = { a: a.link ?? null, b: b.link ?? null };
  if (dev(a) !== dev(b)) f.dev = { a: dev(a), b: dev(b) };
  if (a.xattrs !== undefined && b.xattrs !== undefined) {
    for (const k of new Set([...Object.keys(a.xattrs), ...Object.keys(b.xattrs)])) {
      if (a.xattrs[k] !== b.xattrs[k]) f[`xattr ${k}`] = { a: a.xattrs[k] ?? null, b: b.xattrs[k] ?? null };
    }
  }
  return f;
}

/** Compare two file systems into `res`; paths are reported as `${prefix}${path}` ("imga:/etc/hv" on disks). */
export async function diffTrees(a: Tree, b: Tree, opts: DiffOptions, ignored: (p: string) => boolean, res: DiffResult, prefix = ""): Promise<void> {
  const meta: Record<string, FieldChange> = {};
  if (a.kind !== b.kind) meta.format = { a: a.kind, b: b.kind };
  // superblock facts of different formats do not compare
  else for (const k of new Set([...Object.keys(a.meta), ...Object.keys(b.meta)])) {
    if (a.meta[k] !== b.meta[k]) meta[k] = { a: a.meta[k] ?? null, b: b.meta[k] ?? null };
  }
  if (Object.keys(meta).length) res.filesystem.push({ where: prefix.replace(/:$/, ""), fields: meta });
  const paths = [...new Set([...a.entries.keys(), ...b.entries.keys()])].filter((p) => !ignored(p)).sort();
  for (const p of paths) {
    const ea = a.entries.get(p);
    const eb = b.entries.get(p);
    if (!ea) res.added.push(prefix + p);
    else if (!eb) res.removed.push(prefix + p);
    else {
      const fields = metaFields(ea, eb);
      if (ea.type === "file" && eb.type === "file") {
        // equal sizes may still hide a signature-only change; unequal sizes may be equal once stripped (eve)
        const da = await digest(a, p, opts);
        const db = await digest(b, p, opts);
        if (da !== db) fields.content = { a: `sha256:${da}`, b: `sha256:${db}` };
      }
      if (Object.keys(fields).length) res.changed.push({ path: prefix + p, fields });
    }
  }
}
