import { readFile } from "node:fs/promises";
import { isAbsolute, join as pjoin } from "node:path";
import { performance } from "node:perf_hooks";
import type { Container, ImageLabelConfig, ImageSpec, SpecFile } from "../config/image-spec.js";
import { KilnError } from "../core/errors.js";
import type { Store } from "../store/layout.js";
import { readManifest } from "../store/image.js";
import { type ImageConfigJson, mountPoints, runtimeConfig } from "./oci-runtime.js";
import { indexStoreBlob } from "./tarindex.js";
import { normal, Tree } from "./tree.js";
import { type TarResult, writeTreeTar } from "./write-tar.js";

export interface ComposeInput {
  spec: ImageSpec;
  /** The resolved spec as YAML text, for `files` entries with `metadata: yaml`. */
  specText: string;
  /** Folder that relative `files[].source` paths are read from. */
  specDir: string;
  store: Store;
  mtime: number;
  /** Shown in errors ("images/out/rootfs-kvm-generic.yml"). */
  specName: string;
  /** Host files added last (the installer carries rootfs.img and config.img at /bits/). */
  extraFiles?: { path: string; file: string; size: number }[];
  /**
   * Files made from the finished tree while it is written (the SBOMs, which list the tree's files):
   * `make` is called with the tree once every other file is in it, and must give a file for each of `paths`.
   */
  late?: { paths: string[]; make: (tree: Tree) => Promise<{ path: string; data: Buffer }[]> };
  /** Hash the tar on another thread while it is written (TarResult.sha256). */
  sha256?: boolean;
}

interface LoadedImage {
  ref: string;
  layers: string[];
  config: ImageConfigJson;
  label: ImageLabelConfig;
}

async function loadImage(store: Store, ref: string, where: string): Promise<LoadedImage> {
  const desc = await store.resolveRef(ref);
  if (!desc) {
    throw new KilnError("E_IMAGE_NOT_FOUND", `image '${ref}' (${where}) is not in the store`, {
      hint: "packages of the project are referenced as FOO_TAG or @pkg:pkg/foo, which kiln builds first",
    });
  }
  const manifest = await readManifest(store, desc);
  const config = await store.readJson<ImageConfigJson>(manifest.config.digest);
  const raw = config.config?.Labels?.["org.mobyproject.config"];
  let label: ImageLabelConfig = {};
  if (raw) {
    try {
      label = JSON.parse(raw) as ImageLabelConfig;
    } catch {
      throw new KilnError("E_COMPOSE", `image '${ref}' has an org.mobyproject.config label that is not JSON`);
    }
  }
  return { ref, layers: manifest.layers.map((l) => store.blobPath(l.digest)), config, label };
}

async function applyImage(tree: Tree, prefix: string, img: LoadedImage, store: Store): Promise<void> {
  // read together (each a small file, or the headers of a new layer), applied in order
  const indexes = await Promise.all(img.layers.map((layer) => indexStoreBlob(store, layer)));
  img.layers.forEach((layer, i) => tree.applyLayer(prefix, layer, indexes[i]!));
}

async function readNode(tree: Tree, path: string): Promise<string | undefined> {
  const n = tree.resolveFile(path);
  const c = n?.content;
  if (!c) return undefined;
  if ("data" in c) return c.data.toString("utf8");
  const { open } = await import("node:fs/promises");
  const fh = await open(c.file, "r");
  try {
    const buf = Buffer.alloc(c.size);
    await fh.read(buf, 0, c.size, c.offset);
    return buf.toString("utf8");
  } finally {
    await fh.close();
  }
}

/** A numeric id, or a name looked up in the composed image's /etc/passwd or /etc/group (linuxkit allows both). */
async function lookupId(tree: Tree, root: string, v: number | string | undefined, db: "passwd" | "group", what: string): Promise<number> {
  if (v === undefined) return 0;
  if (typeof v === "number") return v;
  if (/^\d+$/.test(v)) return Number(v);
  const text = (await readNode(tree, root ? `${root}/etc/${db}` : `etc/${db}`)) ?? "";
  const line = text.split("\n").find((l) => l.split(":")[0] === v);
  if (!line) throw new KilnError("E_COMPOSE", `${what}: no ${db === "passwd" ? "user" : "group"} '${v}' in /etc/${db}`);
  return Number(line.split(":")[2]);
}

async function addKernel(tree: Tree, spec: ImageSpec, store: Store): Promise<void> {
  const k = spec.kernel;
  if (!k) return;
  const img = await loadImage(store, k.image, "kernel.image");
  const scratch = new Tree();
  await applyImage(scratch, "", img, store);
  const seq = tree.nextLayer();
  const binary = scratch.resolveFile(normal(k.binary ?? "kernel"));
  if (!binary) throw new KilnError("E_COMPOSE", `kernel image '${k.image}' has no '${k.binary ?? "kernel"}' file`, { hint: "a linuxkit kernel image carries /kernel (and /kernel.tar with the modules)" });
  tree.set("boot/kernel", { ...binary, mode: 0o644, uid: 0, gid: 0 }, seq);
  if (k.cmdline !== undefined) tree.set("boot/cmdline", { type: "file", mode: 0o644, uid: 0, gid: 0, content: { data: Buffer.from(k.cmdline) } }, seq);
  if (k.ucode) {
    const u = scratch.resolveFile(normal(k.ucode));
    if (!u) throw new KilnError("E_COMPOSE", `kernel image '${k.image}' has no ucode file '${k.ucode}'`);
    tree.set("boot/ucode.cpio", { ...u, mode: 0o644, uid: 0, gid: 0 }, seq);
  }
  const tarName = k.tar ?? "kernel.tar";
  if (tarName !== "none") {
    const t = scratch.resolveFile(normal(tarName));
    const c = t?.content;
    if (c && "file" in c) tree.applyLayer("", c.file, await indexStoreBlob(store, c.file, c.offset, c.size));
    else if (k.tar) throw new KilnError("E_COMPOSE", `kernel image '${k.image}' has no '${tarName}'`);
  }
}

async function addContainer(tree: Tree, c: Container, dir: string, store: Store, cgroup: string): Promise<void> {
  const img = await loadImage(store, c.image, `${dir}`);
  await applyImage(tree, `${dir}/rootfs`, img, store);
  const where = `${dir} (${c.name})`;
  const ids = {
    uid: await lookupId(tree, `${dir}/rootfs`, c.uid ?? img.label.uid, "passwd", where),
    gid: await lookupId(tree, `${dir}/rootfs`, c.gid ?? img.label.gid, "group", where),
    additionalGids: await Promise.all((c.additionalGids ?? img.label.additionalGids ?? []).map((g) => lookupId(tree, `${dir}/rootfs`, g, "group", where))),
  };
  let config: Record<string, unknown>;
  try {
    config = runtimeConfig(c, img.config, img.label, ids, cgroup);
  } catch (err) {
    throw new KilnError("E_COMPOSE", `${where}: ${(err as Error).message}`);
  }
  const seq = tree.nextLayer();
  for (const mp of mountPoints(config)) {
    const p = `${dir}/rootfs/${normal(mp.path)}`;
    if (tree.nodes.has(p)) continue;
    tree.set(p, mp.file ? { type: "file", mode: 0o644, uid: 0, gid: 0, content: { data: Buffer.alloc(0) } } : { type: "directory", mode: 0o755, uid: 0, gid: 0 }, seq);
  }
  const json = (v: unknown) => ({ type: "file" as const, mode: 0o644, uid: 0, gid: 0, content: { data: Buffer.from(JSON.stringify(v, null, 2) + "\n") } });
  tree.set(`${dir}/config.json`, json(config), seq);
  const rt = c.runtime ?? img.label.runtime;
  if (rt) tree.set(`${dir}/runtime.json`, json(rt), seq);
}

function fileMode(f: SpecFile, fallback: number): number {
  if (f.mode === undefined) return fallback;
  if (!/^0?[0-7]{3,4}$/.test(f.mode)) throw new KilnError("E_COMPOSE", `files: mode '${f.mode}' of ${f.path} is not octal`);
  return parseInt(f.mode, 8);
}

async function addFiles(tree: Tree, input: ComposeInput): Promise<void> {
  const seq = tree.nextLayer();
  for (const f of input.spec.files ?? []) {
    const path = normal(f.path);
    const where = `files entry ${f.path}`;
    const uid = await lookupId(tree, "", f.uid, "passwd", where);
    const gid = await lookupId(tree, "", f.gid, "group", where);
    if (f.directory || f.path.endsWith("/")) {
      tree.set(path, { type: "directory", mode: fileMode(f, 0o755), uid, gid }, seq);
    } else if (f.symlink !== undefined) {
      tree.set(path, { type: "symlink", mode: 0o777, uid, gid, linkname: f.symlink }, seq);
    } else {
      let data: Buffer | undefined;
      if (f.contents !== undefined) data = Buffer.from(f.contents);
      else if (f.metadata === "yaml") data = Buffer.from(input.specText);
      else if (f.metadata !== undefined) throw new KilnError("E_COMPOSE", `${where}: metadata '${f.metadata}' is not supported (only 'yaml')`);
      else if (f.source !== undefined) {
        const src = f.source.startsWith("~/") ? pjoin(process.env.HOME ?? "", f.source.slice(2)) : isAbsolute(f.source) ? f.source : pjoin(input.specDir, f.source);
        data = await readFile(src).catch((err: NodeJS.ErrnoException) => {
          if (f.optional && err.code === "ENOENT") return undefined;
          throw new KilnError("E_SOURCE_MISSING", `${where}: cannot read source ${src}: ${err.code ?? err.message}`, { location: { file: input.specName } });
        });
        if (!data) continue;
      } else data = Buffer.alloc(0);
      tree.set(path, { type: "file", mode: fileMode(f, 0o600), uid, gid, content: { data } }, seq);
    }
  }
}

/**
 * Compose an image spec into rootfs.tar with linuxkit's layout: the kernel
 * image gives boot/kernel, boot/cmdline and the modules (kernel.tar unpacked
 * at /); init images are unpacked at /; onboot and onshutdown containers go to
 * containers/<section>/NNN-name/ and services to containers/services/name/,
 * each with rootfs/, config.json and runtime.json; then the files entries (a
 * `metadata: yaml` entry embeds the resolved spec, as linuxkit does).
 */
export async function composeRootfs(input: ComposeInput, out: string): Promise<TarResult & { layersMs: number }> {
  const t0 = performance.now();
  const { spec, store } = input;
  const tree = new Tree();
  await addKernel(tree, spec, store);
  for (const ref of spec.init ?? []) await applyImage(tree, "", await loadImage(store, ref, "init"), store);
  for (const section of ["onboot", "onshutdown"] as const) {
    for (const [i, c] of (spec[section] ?? []).entries()) {
      const name = `${String(i).padStart(3, "0")}-${c.name}`;
      await addContainer(tree, c, `containers/${section}/${name}`, store, `${section}/${c.name}`);
    }
  }
  const names = new Set<string>();
  for (const c of spec.services ?? []) {
    if (names.has(c.name)) throw new KilnError("E_COMPOSE", `duplicate service name '${c.name}'`, { location: { file: input.specName } });
    names.add(c.name);
    await addContainer(tree, c, `containers/services/${c.name}`, store, `services/${c.name}`);
  }
  for (const v of spec.volumes ?? []) {
    const base = `containers/volumes/${v.name}`;
    if (v.image) await applyImage(tree, `${base}/lower`, await loadImage(store, v.image, `volume ${v.name}`), store);
    else tree.set(base, { type: "directory", mode: 0o755, uid: 0, gid: 0 });
  }
  await addFiles(tree, input);
  const seq = tree.nextLayer();
  for (const x of input.extraFiles ?? []) tree.set(normal(x.path), { type: "file", mode: 0o644, uid: 0, gid: 0, content: { file: x.file, offset: 0, size: x.size } }, seq);
  const late = new Map<string, Promise<Buffer>>();
  let made: Promise<unknown> | undefined;
  if (input.late) {
    const paths = input.late.paths.map(normal);
    // in the tree now (so they are sorted into place and their folders made), their bytes when made
    for (const p of paths) tree.set(p, { type: "file", mode: 0o644, uid: 0, gid: 0, content: { data: Buffer.alloc(0) } }, seq);
    const files = input.late.make(tree);
    made = files;
    for (const p of paths) {
      const one = files.then((list) => {
        const f = list.find((x) => normal(x.path) === p);
        if (!f) throw new Error(`no content was made for ${p}`);
        return f.data;
      });
      one.catch(() => undefined); // awaited by the writer; a failed write may never reach it
      late.set(p, one);
    }
    files.catch(() => undefined); // awaited below, after the write
  }
  const layersMs = performance.now() - t0;
  // `made` also when nothing of it goes into the image (SBOMs only beside it): a failure leaves no tar
  return { ...(await writeTreeTar(tree, out, input.mtime, { sha256: input.sha256, late, before: made })), layersMs };
}
