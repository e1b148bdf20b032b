import { readFile } from "node:fs/promises";
import { isAbsolute, join as pjoin } from "node:path";
import { performance } from "node:perf_hooks";
import type { Container, ImageLabelConfig, ImageSpec, SpecFile } from "../config/image-spec.js";
import { KilnError } from "../core/errors.js";
import type { Store } from "../store/layout.js";
import { readManifest } from "../store/image.js";
import { type ImageConfigJson, mountPoints, ociJson, runtimeConfig } from "./oci-runtime.js";
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

/** Entries kiln makes itself: root's, a file 0644, a folder 0755, a symlink. */
const rootFile = (data: string | Buffer) => ({ type: "file" as const, mode: 0o644, uid: 0, gid: 0, content: { data: Buffer.from(data) } });
const ROOT_DIR = { type: "directory" as const, mode: 0o755, uid: 0, gid: 0 };
const rootLink = (linkname: string) => ({ type: "symlink" as const, mode: 0o777, uid: 0, gid: 0, linkname });

/** The namespaces runtime.json's bindNS names. */
const BIND_NS = ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"] as const;

/** Entries linuxkit leaves out of every image it writes (build/image.go). */
const DROPPED = [".dockerenv", "Dockerfile", "dev/console", "dev/pts", "dev/shm", "etc/hostname"];
/** The /etc/hosts linuxkit puts in every image. */
const HOSTS = "127.0.0.1       localhost\n::1     localhost ip6-localhost ip6-loopback\nfe00::0 ip6-localnet\nff00::0 ip6-mcastprefix\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n";

/**
 * What linuxkit does to an image's files as it writes them (build/image.go,
 * ImageTar): host-specific entries dropped (etc/hostname, dev/console …),
 * etc/hosts and etc/resolv.conf replaced (in an init image resolv.conf links
 * to /run/resolvconf/resolv.conf), and dev/, dev/pts/, dev/shm/, etc/, proc/,
 * sys/ and etc/mtab (→ /proc/mounts) made when missing.
 */
function imageFixups(tree: Tree, prefix: string, init: boolean): void {
  const at = (p: string) => (prefix ? `${prefix}/${p}` : p);
  for (const p of DROPPED) if (tree.nodes.has(at(p))) tree.drop(at(p));
  const seq = tree.nextLayer();
  for (const d of ["dev", "dev/pts", "dev/shm", "etc", "proc", "sys"]) if (!tree.nodes.has(at(d))) tree.set(at(d), ROOT_DIR, seq);
  if (!tree.nodes.has(at("etc/mtab"))) tree.set(at("etc/mtab"), rootLink("/proc/mounts"), seq);
  tree.set(at("etc/hosts"), rootFile(HOSTS), seq);
  tree.set(at("etc/resolv.conf"), init ? rootLink("/run/resolvconf/resolv.conf") : rootFile("\n# no resolv.conf configured\n"), seq);
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

/**
 * A uid or gid: a number; "root" (or "") is 0; a container's name is the id
 * linuxkit gives that container (100, 101 … in yml order: onboot, onshutdown,
 * services); else (kiln's addition) a name in the image's /etc/passwd or
 * /etc/group.
 */
async function lookupId(tree: Tree, root: string, v: number | string | undefined, db: "passwd" | "group", what: string, ids: ReadonlyMap<string, number>): Promise<number> {
  if (v === undefined || v === "" || v === "root") return 0;
  if (typeof v === "number") return v;
  if (/^\d+$/.test(v)) return Number(v);
  const byName = ids.get(v);
  if (byName !== undefined) return byName;
  const text = (await readNode(tree, root ? `${root}/etc/${db}` : `etc/${db}`)) ?? "";
  const line = text.split("\n").find((l) => l.split(":")[0] === v);
  if (!line) throw new KilnError("E_COMPOSE", `${what}: no container named '${v}' and no ${db === "passwd" ? "user" : "group"} '${v}' in /etc/${db}`);
  return Number(line.split(":")[2]);
}

async function addKernel(tree: Tree, spec: ImageSpec, store: Store): Promise<void> {
  const k = spec.kernel;
  if (!k?.image) return;
  const img = await loadImage(store, k.image, "kernel.image");
  const scratch = new Tree();
  await applyImage(scratch, "", img, store);
  const seq = tree.nextLayer();
  const binary = scratch.resolveFile(normal(k.binary ?? "kernel"));
  if (!binary) throw new KilnError("E_COMPOSE", `kernel image '${k.image}' has no '${k.binary ?? "kernel"}' file`, { hint: "a linuxkit kernel image carries /kernel (and /kernel.tar with the modules)" });
  tree.set("boot/kernel", { ...binary, mode: 0o644, uid: 0, gid: 0 }, seq);
  // always, as linuxkit writes it (empty without a cmdline)
  tree.set("boot/cmdline", rootFile(k.cmdline ?? ""), seq);
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

/**
 * A container's bundle, laid out as linuxkit does (build/image.go,
 * ImageBundle): a read-only container's image in rootfs/; a writable one's in
 * lower/, with tmp/ and an empty rootfs/ where the runtime.json mounts (a
 * tmpfs, then an overlay of lower/ and tmp/upper) make its root at boot.
 * config.json is the OCI runtime config; runtime.json the root's mounts
 * followed by the yml's runtime section.
 */
async function addContainer(tree: Tree, c: Container, dir: string, store: Store, idMap: ReadonlyMap<string, number>, unpacked: Map<string, string>): Promise<void> {
  const img = await loadImage(store, c.image, `${dir}`);
  const readonly = c.readonly ?? img.label.readonly ?? false;
  // an image several containers use is unpacked once, for the first; the others mount it from there (linuxkit's dupMap)
  const shared = unpacked.get(c.image);
  const imageDir = shared ?? `${dir}/${readonly ? "rootfs" : "lower"}`;
  if (!shared) {
    await applyImage(tree, imageDir, img, store);
    imageFixups(tree, imageDir, false);
    unpacked.set(c.image, imageDir);
  }
  const where = `${dir} (${c.name})`;
  const ids = {
    uid: await lookupId(tree, imageDir, c.uid ?? img.label.uid, "passwd", where, idMap),
    gid: await lookupId(tree, imageDir, c.gid ?? img.label.gid, "group", where, idMap),
    additionalGids: await Promise.all((c.additionalGids ?? img.label.additionalGids ?? []).map((g) => lookupId(tree, imageDir, g, "group", where, idMap))),
  };
  let config: Record<string, unknown>;
  try {
    config = runtimeConfig(c, img.config, img.label, ids);
  } catch (err) {
    throw new KilnError("E_COMPOSE", `${where}: ${(err as Error).message}`);
  }
  const seq = tree.nextLayer();
  // mount points made in the image: on a read-only root (squashfs) the runtime cannot make them at boot
  for (const mp of mountPoints(config)) {
    const p = `${imageDir}/${normal(mp.path)}`;
    if (tree.nodes.has(p)) continue;
    tree.set(p, mp.file ? rootFile("") : ROOT_DIR, seq);
  }
  if (!readonly) tree.set(`${dir}/tmp`, ROOT_DIR, seq);
  if (!readonly || shared) tree.set(`${dir}/rootfs`, ROOT_DIR, seq);
  tree.set(`${dir}/config.json`, rootFile(ociJson(config)), seq);
  const rootMounts = readonly
    ? [{ source: `/${imageDir}`, destination: `/${dir}/rootfs`, options: ["bind"] }]
    : [
        { source: "tmpfs", type: "tmpfs", destination: `/${dir}/tmp` },
        { destination: `/${dir}/tmp`, options: ["remount", "private"] },
        { source: "overlay", type: "overlay", destination: `/${dir}/rootfs`, options: [`lowerdir=/${imageDir}`, `upperdir=/${dir}/tmp/upper`, `workdir=/${dir}/tmp/work`] },
      ];
  // each field from the yml, else the image's label (bindNS namespace by namespace), as linuxkit's assignRuntime
  const yml = c.runtime ?? {};
  const lab = img.label.runtime ?? {};
  const bindNS = Object.fromEntries(BIND_NS.map((n) => [n, yml.bindNS?.[n] ?? lab.bindNS?.[n] ?? ""]));
  const noRestart = yml.noRestart ?? lab.noRestart;
  const runtime = {
    cgroups: yml.cgroups ?? lab.cgroups ?? [],
    mounts: [...rootMounts, ...(yml.mounts ?? lab.mounts ?? [])],
    mkdir: yml.mkdir ?? lab.mkdir ?? [],
    interfaces: yml.interfaces ?? lab.interfaces ?? [],
    bindNS,
    namespace: yml.namespace ?? lab.namespace ?? "",
    ...(noRestart !== undefined ? { noRestart } : {}),
  };
  tree.set(`${dir}/runtime.json`, rootFile(ociJson(runtime)), seq);
}

function fileMode(f: SpecFile, fallback: number): number {
  if (f.mode === undefined) return fallback;
  if (!/^0?[0-7]{3,4}$/.test(f.mode)) throw new KilnError("E_COMPOSE", `files: mode '${f.mode}' of ${f.path} is not octal`);
  return parseInt(f.mode, 8);
}

/** A folder made for a `files` entry: its mode with x wherever it has r or w (linuxkit: 0644 → 0755, 0600 → 0700). */
function dirMode(mode: number): number {
  let m = mode;
  for (const [any, x] of [[0o700, 0o100], [0o070, 0o010], [0o007, 0o001]] as const) if (mode & any) m |= x;
  return m;
}

/**
 * The `files` entries, with linuxkit's rules (build.go, filesystem): a file
 * needs contents, a source or metadata (one of them), a folder or a symlink
 * none of them; files are 0600 and folders 0700 unless a mode is given;
 * folders above an entry that do not exist yet are made with its owner and
 * its mode plus x; metadata is the resolved spec as yaml or json.
 */
async function addFiles(tree: Tree, input: ComposeInput, idMap: ReadonlyMap<string, number>): Promise<void> {
  const seq = tree.nextLayer();
  for (const f of input.spec.files ?? []) {
    const path = normal(f.path);
    const where = `files entry ${f.path}`;
    const bad = (msg: string) => new KilnError("E_COMPOSE", `${where}: ${msg}`, { location: { file: input.specName } });
    const isDir = f.directory || f.path.endsWith("/");
    if (f.contents !== undefined || isDir || f.symlink !== undefined) {
      const what = isDir ? "a directory" : f.symlink !== undefined ? "a symlink" : "contents";
      if (f.metadata !== undefined) throw bad(`${what} and metadata: give one`);
      if (f.source !== undefined) throw bad(`${what} and source: give one`);
      if (isDir && f.contents !== undefined) throw bad("a directory cannot have contents");
    } else if (f.source === undefined && f.metadata === undefined) throw bad("no contents, source or metadata: say what the file holds (contents: \"\" for an empty file)");
    else if (f.source !== undefined && f.metadata !== undefined) throw bad("source and metadata: give one");
    if (!path) throw bad("the root folder itself cannot be a files entry");
    // a file's bytes first: an optional source that cannot be read leaves no trace, not even its folders
    let data: Buffer | undefined;
    if (!isDir && f.symlink === undefined) {
      if (f.contents !== undefined) data = Buffer.from(f.contents);
      else if (f.metadata === "yaml") data = Buffer.from(input.specText);
      else if (f.metadata === "json") data = Buffer.from(JSON.stringify((await import("yaml")).parse(input.specText), null, 4));
      else if (f.metadata !== undefined) throw bad(`metadata '${f.metadata}' is not one of: yaml, json`);
      else {
        const source = f.source!;
        const src = source.startsWith("~/") ? pjoin(process.env.HOME ?? "", source.slice(2)) : isAbsolute(source) ? source : pjoin(input.specDir, source);
        data = await readFile(src).catch((err: NodeJS.ErrnoException) => {
          if (f.optional) return undefined;
          throw new KilnError("E_SOURCE_MISSING", `${where}: cannot read source ${src}: ${err.code ?? err.message}`, { location: { file: input.specName } });
        });
        if (!data) continue;
      }
    }
    const uid = await lookupId(tree, "", f.uid, "passwd", where, idMap);
    const gid = await lookupId(tree, "", f.gid, "group", where, idMap);
    const mode = fileMode(f, isDir ? 0o700 : 0o600);
    for (let i = path.indexOf("/"); i !== -1; i = path.indexOf("/", i + 1)) {
      const parent = path.slice(0, i);
      if (!tree.nodes.has(parent)) tree.set(parent, { type: "directory", mode: dirMode(mode), uid, gid }, seq);
    }
    if (isDir) tree.set(path, { type: "directory", mode, uid, gid }, seq);
    else if (f.symlink !== undefined) tree.set(path, { type: "symlink", mode: 0o777, uid, gid, linkname: f.symlink }, seq);
    else tree.set(path, { type: "file", mode, uid, gid, content: { data: data! } }, seq);
  }
}

/** linuxkit's ids for uid/gid names: each container's name, from 100 in yml order (onboot, onshutdown, services); a later one of the same name wins. */
function containerIds(spec: ImageSpec): Map<string, number> {
  const ids = new Map<string, number>();
  let next = 100;
  for (const c of [...(spec.onboot ?? []), ...(spec.onshutdown ?? []), ...(spec.services ?? [])]) ids.set(c.name, next++);
  return ids;
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
  const idMap = containerIds(spec);
  const unpacked = new Map<string, string>();
  await addKernel(tree, spec, store);
  for (const ref of spec.init ?? []) {
    await applyImage(tree, "", await loadImage(store, ref, "init"), store);
    imageFixups(tree, "", true);
  }
  for (const section of ["onboot", "onshutdown"] as const) {
    for (const [i, c] of (spec[section] ?? []).entries()) {
      const name = `${String(i).padStart(3, "0")}-${c.name}`;
      await addContainer(tree, c, `containers/${section}/${name}`, store, idMap, unpacked);
    }
  }
  const names = new Set<string>();
  for (const c of spec.services ?? []) {
    if (names.has(c.name)) throw new KilnError("E_COMPOSE", `duplicate service name '${c.name}'`, { location: { file: input.specName } });
    names.add(c.name);
    await addContainer(tree, c, `containers/services/${c.name}`, store, idMap, unpacked);
  }
  for (const v of spec.volumes ?? []) {
    const base = `containers/volumes/${v.name}`;
    if (v.image) await applyImage(tree, `${base}/lower`, await loadImage(store, v.image, `volume ${v.name}`), store);
    else tree.set(base, ROOT_DIR);
  }
  await addFiles(tree, input, idMap);
  const seq = tree.nextLayer();
  for (const x of input.extraFiles ?? []) tree.set(normal(x.path), { type: "file", mode: 0o644, uid: 0, gid: 0, content: { file: x.file, offset: 0, size: x.size } }, seq);
  const late = new Map<string, Promise<Buffer>>();
  let made: Promise<unknown> | undefined;
  if (input.late) {
    const paths = input.late.paths.map(normal);
    // in the tree now (so they are sorted into place and their folders made), their bytes when made
    for (const p of paths) tree.set(p, rootFile(""), seq);
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
