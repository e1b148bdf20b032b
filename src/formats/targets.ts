import { mkdir, readFile, rename, rm, stat, symlink } from "node:fs/promises";
import { basename, join } from "node:path";
import { variantParams } from "../compose/sbom/image.js";
import type { ProvenanceSpec } from "../compose/sbom/provenance.js";
import { buildImageTar, type ImageTargetContext } from "../compose/target.js";
import { writeFileAtomic } from "../core/atomic.js";
import { sha256Hex, stableJson } from "../core/hash.js";
import { KilnError } from "../core/errors.js";
import { findTool } from "../core/tools.js";
import type { Store } from "../store/layout.js";
import { toolVersions } from "../store/tools.js";
import { writeDisk } from "../disk/assemble.js";
import { type EspContents, espInputs, makeEsp } from "../disk/esp.js";
import { EVE_INSTALLER, EVE_LIVE, MiB, placeLayout } from "../disk/layout.js";
import { makeFat, overlay } from "../fs/fat.js";
import { makeRootfsImg } from "../fs/rootfs-img.js";
import { KILN_FORMAT } from "../graph/inputs.js";
import type { Variant } from "../variant/knobs.js";
import { type Artifact, artifact, artifactSha256 } from "./artifacts.js";
import { settleBackground } from "../core/background.js";
import { convert, FORMATS } from "./index.js";
import type { ImagesConfig, PartitionConfig } from "../config/schema.js";
import { SHARE_DIR } from "../core/paths.js";

export interface DiskRequest {
  /**
   * A root file system made elsewhere (a Pygos product's rootfs.tar), instead of composing the
   * variant's image spec; the outputs go to `dir`.
   */
  from?: { tar: Artifact; img?: Artifact; dir: string };
  /** The build profile (images.profiles): release (default) or dev (fast compression), or the project's own. */
  profile?: string;
  rootfsImg?: boolean;
  configImg?: boolean;
  /** live formats: raw, qcow2, vdi, parallels, vhdx, gcp */
  live?: string[];
  installer?: boolean;
  iso?: boolean;
}

const SHARE = SHARE_DIR;

/** The versions of the tools a stage runs, for its key (cached in the store by binary stat; a missing tool is an error here, before any work). */
async function toolStamp(store: Store, tools: string[]): Promise<Record<string, string>> {
  const versions = await toolVersions(store, tools);
  for (const t of tools) if (versions[t] === "absent") await findTool(t);
  return Object.fromEntries(tools.map((t) => [t, versions[t]!]));
}

/**
 * The boot loader config for the ESP when the rootfs brings none. With a
 * kernel in EFI/BOOT (and maybe an initrd), boot it with the image spec's
 * cmdline; otherwise hand over to the active slot's own grub.cfg.
 */
function espGrubCfg(parts: { name: string; contents: string }[]): (c: EspContents) => string {
  return (c) => {
    if (c.files.includes("EFI/BOOT/kernel")) {
      return [
        "# written by kiln: the kernel, initramfs and cmdline of the image spec",
        "set timeout=0",
        `linux /EFI/BOOT/kernel ${c.cmdline ?? ""}`.trimEnd(),
        ...(c.files.includes("EFI/BOOT/initrd.img") ? ["initrd /EFI/BOOT/initrd.img"] : []),
        "boot",
        "",
      ].join("\n");
    }
    return chainCfg(parts);
  };
}

function chainCfg(parts: { name: string; contents: string }[]): string {
  const slot = parts.findIndex((p) => p.contents === "rootfs") + 1;
  return [
    "# written by kiln: boot the root file system in the active slot (gptprio)",
    "set timeout=0",
    `set root=(hd0,gpt${slot})`,
    "if [ -f /EFI/BOOT/grub.cfg ]; then configfile /EFI/BOOT/grub.cfg; fi",
    "if [ -f /boot/grub/grub.cfg ]; then configfile /boot/grub/grub.cfg; fi",
    "",
  ].join("\n");
}

/** Built-in profiles; kiln.yml images.profiles changes them or adds others. */
const PROFILES: Record<string, { compression?: string; compressionLevel?: number; provenance?: boolean }> = {
  release: {},
  // lz4: ~20x faster than gzip for mksquashfs (0.25 s for the example's 50 MB), a larger image.
  // No provenance for the disk images: hashing live.raw and live.qcow2 would cost more than making them.
  dev: { compression: "lz4", provenance: false },
};

/** The squashfs compression of a build profile: the profile's own settings over images.compression(Level). */
export function profileCompression(cfg: ImagesConfig, profile = process.env.KILN_PROFILE || "release"): { profile: string; compression: string; compressionLevel?: number; provenance: boolean } {
  const own = cfg.profiles?.[profile] ?? PROFILES[profile];
  if (!own) {
    const names = [...new Set([...Object.keys(PROFILES), ...Object.keys(cfg.profiles ?? {})])];
    throw new KilnError("E_USAGE", `unknown build profile '${profile}'`, { hint: `one of: ${names.join(", ")} (kiln.yml images.profiles adds others)` });
  }
  const builtin = PROFILES[profile];
  const compression = own.compression ?? builtin?.compression ?? cfg.compression ?? "gzip";
  // A level belongs to its compressor: images.compressionLevel applies only where the profile keeps images.compression.
  const keeps = !own.compression && !builtin?.compression;
  const compressionLevel = own.compressionLevel ?? (keeps ? cfg.compressionLevel : builtin?.compressionLevel);
  const provenance = own.provenance ?? builtin?.provenance ?? true;
  return { profile, compression, ...(compressionLevel !== undefined ? { compressionLevel } : {}), provenance };
}

/**
 * rootfs.tar → rootfs.img, config.img, live.raw (and converted formats),
 * installer.raw / installer.iso, for one variant. Each artifact is keyed by
 * its inputs and reused when unchanged.
 */
export async function buildDisks(ctx: ImageTargetContext, variant: Variant, want: DiskRequest): Promise<Record<string, Artifact>> {
  let out: Record<string, Artifact>;
  try {
    out = await makeDisks(ctx, variant, want);
  } catch (err) {
    await settleBackground().catch(() => undefined);
    throw err;
  }
  // outputs hashed off-thread for their provenance: done before the command reports them
  await settleBackground();
  return out;
}

async function makeDisks(ctx: ImageTargetContext, variant: Variant, want: DiskRequest): Promise<Record<string, Artifact>> {
  const cfg = ctx.project.config.images ?? {};
  const dir = want.from?.dir ?? join(ctx.outDir, variant.arch, variant.name);
  const recordDir = want.from ? join(dir, ".kiln", "records", "disks") : join(ctx.outDir, ".kiln", "records", variant.arch, variant.name);
  const workDir = want.from ? join(dir, ".work", "disks") : join(ctx.outDir, ".work", variant.arch, variant.name);
  await mkdir(dir, { recursive: true });
  const epoch = ctx.project.sourceDateEpoch;
  const out: Record<string, Artifact> = {};
  const maxSize = cfg.maxsize ? cfg.maxsize * MiB : undefined;
  const comp = profileCompression(cfg, want.profile);
  const fsTools = variant.format === "squashfs" ? ["mksquashfs"] : variant.format === "ext4" ? ["mkfs.ext4", "fakeroot", "debugfs"] : ["mkfs.erofs", "fakeroot"];
  /** Provenance of an output: the variant's knobs, and its inputs by name, sha256 and key. */
  const params = variantParams(ctx.project, variant);
  const prov = (target: string, inputs: (Artifact | undefined)[], internal: Record<string, unknown> = {}): ProvenanceSpec | undefined => comp.provenance ? ({
    target,
    params,
    internal: { sourceDateEpoch: epoch, ...internal },
    deps: inputs.flatMap((a) => (a ? [{ name: basename(a.path), sha256: a.sha256 ?? a.sha256Pending, key: a.id }] : [])),
  }) : undefined;

  const rootfsImg = async (from: Artifact, name: string, id: string) => {
    const tools = await toolStamp(ctx.store, fsTools);
    return artifact(recordDir, id, join(dir, name), sha256Hex(stableJson({ f: KILN_FORMAT, tarSha: from.id, format: variant.format, comp: comp.compression, level: comp.compressionLevel, maxSize, epoch, tools })), ctx.bus, async () => {
      await makeRootfsImg(from.path, join(dir, name), { format: variant.format, tarSha256: from.id, mtime: epoch, compression: comp.compression, compressionLevel: comp.compressionLevel, maxSize, jobs: ctx.jobs, workDir, label: "rootfs" });
    }, prov(name, [from], { compression: comp.compression, compressionLevel: comp.compressionLevel, profile: comp.profile, maxSize, tools }));
  };

  const tar = want.from ? { tar: want.from.tar.path, id: want.from.tar.id, size: want.from.tar.size, cached: want.from.tar.cached, sha256: undefined, sha256Pending: undefined } : await buildImageTar(ctx, variant, "rootfs", [], { provenance: comp.provenance });
  out["rootfs.tar"] = { path: tar.tar, id: tar.id, size: tar.size, cached: tar.cached, sha256: tar.sha256, sha256Pending: tar.sha256Pending };
  const needImg = want.rootfsImg || want.live?.length || want.installer || want.iso;
  if (!needImg && !want.configImg) return out;
  if (needImg) out["rootfs.img"] = want.from?.img ? want.from.img : await rootfsImg(out["rootfs.tar"], "rootfs.img", `rootfs.img/${variant.arch}/${variant.name}`);
  if (!(want.configImg || want.live?.length || want.installer || want.iso)) return out;

  // config.img: kiln's defaults, then the project's conf/ (the project wins).
  const confCfg = cfg.config ?? {};
  const stage = join(workDir, "conf");
  await overlay([join(SHARE, "conf"), join(ctx.project.root, confCfg.dir ?? "conf")], stage);
  const confFiles = await listFiles(stage);
  const fatTools = await toolStamp(ctx.store, ["mkfs.vfat", "mcopy"]);
  const confKey = sha256Hex(stableJson({ f: KILN_FORMAT, files: confFiles, label: confCfg.label ?? "EVE", size: confCfg.size ?? 1024, epoch, tools: fatTools }));
  const confProv = prov("config.img", [], { label: confCfg.label ?? "EVE", sizeKiB: confCfg.size ?? 1024, tools: fatTools });
  // its inputs: kiln's default files and the project's conf/, merged (by path in the image)
  if (confProv) confProv.deps = confFiles.filter(([, d]) => d !== "dir").map(([name, sha256]) => ({ name: `conf/${name}`, sha256 }));
  out["config.img"] = await artifact(recordDir, `config.img/${variant.arch}/${variant.name}`, join(dir, "config.img"), confKey, ctx.bus, () =>
    makeFat(stage, join(dir, "config.img"), { label: confCfg.label ?? "EVE", sizeKiB: confCfg.size ?? 1024, volumeId: confKey.slice(0, 8), epoch }),
  confProv);

  /** The EFI system partition's image, an artifact of its own (the installer carries the live one in /bits). */
  const esp = async (name: string, from: Artifact, sizeBytes: number, parts: { name: string; contents: string }[]) => {
    const tarPath = from.path;
    // What the ESP takes from the tar, digested; remembered by the tar's id (equal ids, equal bytes), so a no-op build does not read the tar.
    const memo = join(recordDir, `${name}.boot.json`);
    const seen = JSON.parse(await readFile(memo, "utf8").catch(() => "null")) as { tar: string; boot: string } | null;
    let boot = seen?.tar === from.id ? seen.boot : undefined;
    if (boot === undefined) {
      const found = await espInputs(tarPath);
      boot = found.digest;
      // grub boots /boot/kernel of the root partition: without one the disk is made, but cannot boot
      if (!found.kernel) ctx.bus.emit({ type: "warn", message: `${basename(tarPath)} has no boot/kernel, which grub boots: the disks made from it will not start (an image spec gets one from kernel.image)` });
    }
    if (seen?.tar !== from.id) await writeFileAtomic(memo, JSON.stringify({ tar: from.id, boot }), { sync: false });
    const key = sha256Hex(stableJson({ f: KILN_FORMAT, boot, sizeBytes, parts: parts.map((p) => [p.name, p.contents]), epoch, tools: fatTools }));
    return artifact(recordDir, `${name}/${variant.arch}/${variant.name}`, join(dir, name), key, ctx.bus, () =>
      makeEsp(tarPath, join(dir, name), { workDir, grubCfg: espGrubCfg(parts), sizeBytes, epoch }).then(() => undefined),
    prov(name, [from], { sizeBytes, tools: fatTools }));
  };

  const place = (name: string, layout: PartitionConfig[], img: Artifact, conf: Artifact) => {
    const espSize = (p: PartitionConfig) => (p.size && p.size !== "fit" ? placeLayout([p], () => 0, name).parts[0]!.size : 36 * MiB);
    const sizes: Record<string, number> = { rootfs: img.size, config: conf.size, persist: 0, empty: 0, efi: 0 };
    return placeLayout(layout, (p) => (p.contents === "efi" ? espSize(p) : sizes[p.contents] ?? 0), name);
  };

  const disk = async (name: string, layout: PartitionConfig[], efi: Artifact | undefined, img: Artifact, conf: Artifact) => {
    const placed = place(name, layout, img, conf);
    const key = sha256Hex(stableJson({ f: KILN_FORMAT, layout, efi: efi?.id, img: img.id, conf: conf.id }));
    return artifact(recordDir, `${name}/${variant.arch}/${variant.name}`, join(dir, name), key, ctx.bus, async () => {
      const contents: Record<string, { file?: string; id?: string }> = {};
      for (const p of placed.parts) {
        if (p.contents === "efi" && efi) contents[p.name] = { file: efi.path, id: efi.id };
        if (p.contents === "rootfs") contents[p.name] = { file: img.path, id: img.id };
        if (p.contents === "config") contents[p.name] = { file: conf.path, id: conf.id };
        if (p.contents === "persist") {
          const persist = join(ctx.project.root, "persist.img");
          if (await stat(persist).catch(() => undefined)) contents[p.name] = { file: persist, id: sha256Hex(await readFile(persist)) };
        }
      }
      await writeDisk(join(dir, name), placed.parts, placed.diskSize, contents);
    }, prov(name, [efi, img, conf], { layout }));
  };

  const liveLayout = ctx.project.config.disks?.live ?? EVE_LIVE;
  const liveEfi = async () => {
    const placed = place("live.raw", liveLayout, out["rootfs.img"]!, out["config.img"]!);
    const part = placed.parts.find((p) => p.contents === "efi");
    return part ? esp("efi.img", out["rootfs.tar"]!, part.size, placed.parts) : undefined;
  };

  if (want.live?.length) {
    const efi = await liveEfi();
    if (efi) out["efi.img"] = efi;
    const raw = await disk("live.raw", liveLayout, efi, out["rootfs.img"]!, out["config.img"]);
    out["live.raw"] = raw;
    let last = "live.raw";
    for (const f of want.live.filter((x) => x !== "raw")) {
      const fmt = FORMATS[f];
      if (!fmt) throw new KilnError("E_USAGE", `unknown live format '${f}' (one of: raw, ${Object.keys(FORMATS).join(", ")})`);
      const name = `live.${fmt.ext}`;
      const tools = await toolStamp(ctx.store, fmt.tools);
      out[name] = await artifact(recordDir, `${name}/${variant.arch}/${variant.name}`, join(dir, name), sha256Hex(stableJson({ f: KILN_FORMAT, raw: raw.id, fmt: f, tools })), ctx.bus, () => convert(f, raw.path, join(dir, name), raw.id), prov(name, [raw], { format: f, tools }));
      last = name;
    }
    // live.img points at the format built last, as EVE's does.
    const link = join(dir, "live.img");
    const tmp = `${link}.tmp-${process.pid}`;
    await rm(tmp, { force: true });
    await symlink(last, tmp);
    await rename(tmp, link);
  }

  if ((want.installer || want.iso) && want.from) {
    throw new KilnError("E_USAGE", "an installer is made from the image spec's installer.yml.in; a Pygos product has none", { hint: "build live (live.raw, live.qcow2 …) for a product" });
  }
  if (want.installer || want.iso) {
    const img = out["rootfs.img"]!;
    const conf = out["config.img"];
    // The installer carries what it writes: rootfs.img and config.img (as EVE's), and the live ESP.
    const liveEsp = out["efi.img"] ?? (await liveEfi());
    const itar = await buildImageTar(ctx, variant, "installer", [
      { path: "/bits/rootfs.img", file: img.path, size: img.size, id: img.id, sha256: await artifactSha256(img) },
      { path: "/bits/config.img", file: conf.path, size: conf.size, id: conf.id, sha256: await artifactSha256(conf) },
      ...(liveEsp ? [{ path: "/bits/efi.img", file: liveEsp.path, size: liveEsp.size, id: liveEsp.id, sha256: await artifactSha256(liveEsp) }] : []),
    ], { provenance: comp.provenance });
    out["installer.tar"] = { path: itar.tar, id: itar.id, size: itar.size, cached: itar.cached, sha256: itar.sha256, sha256Pending: itar.sha256Pending };
    const iimg = await rootfsImg(out["installer.tar"], "rootfs_installer.img", `rootfs_installer.img/${variant.arch}/${variant.name}`);
    out["rootfs_installer.img"] = iimg;
    if (want.installer) {
      const layout = ctx.project.config.disks?.installer ?? EVE_INSTALLER;
      const placed = place("installer.raw", layout, iimg, conf);
      const part = placed.parts.find((p) => p.contents === "efi");
      const iefi = part ? await esp("installer-efi.img", out["installer.tar"], part.size, placed.parts) : undefined;
      out["installer.raw"] = await disk("installer.raw", layout, iefi, iimg, conf);
    }
    if (want.iso) {
      const { makeIso } = await import("../disk/iso.js");
      const tools = await toolStamp(ctx.store, ["xorriso", "mkfs.vfat", "mcopy"]);
      const key = sha256Hex(stableJson({ f: KILN_FORMAT, tar: itar.id, img: iimg.id, conf: conf.id, epoch, tools }));
      out["installer.iso"] = await artifact(recordDir, `installer.iso/${variant.arch}/${variant.name}`, join(dir, "installer.iso"), key, ctx.bus, () =>
        makeIso(join(dir, "installer.iso"), { tar: itar.tar, rootfsImg: iimg.path, configImg: conf.path, workDir, epoch, volumeId: key }),
      prov("installer.iso", [out["installer.tar"], iimg, conf], { tools }));
    }
  }
  return out;
}

async function listFiles(dir: string, prefix = ""): Promise<[string, string][]> {
  const { readdir } = await import("node:fs/promises");
  const out: [string, string][] = [];
  for (const e of (await readdir(join(dir, prefix), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push([`${rel}/`, "dir"], ...(await listFiles(dir, rel)));
    else out.push([rel, sha256Hex(await readFile(join(dir, rel)))]);
  }
  return out;
}
