import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { PygosRecipe } from "../../config/schema.js";
import { asKilnError, KilnError } from "../../core/errors.js";
import { run, spawnGroup } from "../../core/exec.js";
import { sha256Hex, stableJson } from "../../core/hash.js";
import { whichTool } from "../../core/tools.js";
import { tagOf } from "../../graph/plan.js";
import { copiesOf } from "../../pygos/layers.js";
import { osRelease } from "../../pygos/load.js";
import { lineOf } from "../../pygos/meta.js";
import { readSubPackage } from "../../pygos/package.js";
import { HELPERS } from "../../pygos/shell.js";
import { cmakeToolchainFile, writeToolchainDir } from "../../pygos/toolchain.js";
import { readManifest, writeImage } from "../../store/image.js";
import { type Descriptor, KEY_ANNOTATION } from "../../store/layout.js";
import { type LayerEntry, writeLayer } from "../layer.js";
import { StepLog } from "../log.js";
import { fetchSource } from "../sources.js";
import type { BuildStep } from "../step.js";
import { unpackLayers } from "../unpack.js";
import { sandboxArgs } from "./sandbox.js";

/** The image label that lists a Pygos package's binary packages (read by the product's rootfs step). */
export const SUBPACKAGES_LABEL = "dev.kiln.pygos.subpackages";

export interface SubPackageRecord {
  ref: string;
  manifest: string;
  layer: Descriptor;
  requires: string[];
  version: string;
}

/** The driver every step runs: helpers, the product's TOOLCHAIN (layer order), the script, then one function. */
const DRIVER = `set -e
umask 022
source "$KILN_HELPERS"
while IFS= read -r __kiln_f; do [ -n "$__kiln_f" ] && source "$__kiln_f"; done <<< "$KILN_TCFILES"
cd "$KILN_PKGDIR"
source "$KILN_SCRIPT"
for __kiln_fn in $KILN_NEED; do
  declare -F "$__kiln_fn" > /dev/null || { echo "kiln: $KILN_SCRIPT defines no function $__kiln_fn()" >&2; exit 90; }
done
case "$KILN_STEP" in
  prepare) cd "$KILN_SRC"; prepare "$KILN_PKGDIR" ;;
  build) cd "$PKGBUILDDIR"; build "$KILN_SRC" ;;
  deploy)
    cd "$PKGBUILDDIR"; deploy "$KILN_SRC"
    # as mk.sh does after deploy: strip the ELF files of the usual binary folders
    for __kiln_d in bin sbin lib usr/bin usr/sbin usr/lib; do
      if [ -d "$PKGDEPLOYDIR/$__kiln_d" ]; then strip_files "$PKGDEPLOYDIR/$__kiln_d"; fi
    done ;;
esac
`;

interface Ctx {
  step: BuildStep;
  recipe: PygosRecipe;
  env: Record<string, string>;
  buildRoot: string;
  roBinds: string[];
  /** Under bubblewrap: the step's own folders mounted at the paths its variables name (host path, path in the sandbox), after the read-only binds. */
  binds: [string, string][];
}

/**
 * A Pygos package (pkg/<name>/build, unchanged): the tarball fetched into the
 * shared download cache (sha256 checked), unpacked and prepared once into
 * the shared src/ folder, DEPENDS unpacked into the staging sysroot, then
 * build and deploy run (under bubblewrap: no network, only the step's folders
 * writable), each with its own gzipped log in BUILDROOT/log. Every SUBPKG
 * becomes a binary package (an OCI image of its own) from its .files/.desc;
 * the package's own image holds all of them.
 */
export async function buildPygos(step: BuildStep): Promise<LayerEntry[]> {
  const recipe = step.pkg.recipe as PygosRecipe;
  const py = step.project.pygos!;
  const root = step.project.root;
  // The scheduler's scratch folder is OUT/.work/ARCH/NAME; OUT is the build root.
  const buildRoot = resolve(step.workDir, "../../..");
  const base = py.product && basename(buildRoot) === py.product ? dirname(buildRoot) : buildRoot;
  const w = step.workDir;
  const dirs = { build: join(w, "build"), deploy: join(w, "deploy"), tmp: join(w, "tmp") };
  await Promise.all([...Object.values(dirs), join(buildRoot, "log")].map((d) => mkdir(d, { recursive: true })));

  const tarball = await fetchTarball(step, recipe, base, buildRoot);
  const srcKey = sha256Hex(stableJson({ f: 1, tarball: recipe.meta.sha256, files: step.node.record.files, helpers: await readFile(HELPERS, "utf8") })).slice(0, 16);
  const pkgSrcDir = join(base, "src", `${step.pkg.name}-${srcKey}`);
  const sandboxed = !!(await sandboxArgs(w, step.bus));
  const tc = await setUpToolchain(step, recipe, buildRoot, sandboxed);
  const { tcDir, sysroot } = tc;
  const cmakeFile = join(w, "toolchain.cmake");
  await writeFile(cmakeFile, cmakeToolchainFile({ kind: recipe.toolchain.kind, target: recipe.toolchain.target, hostTuple: "", arch: step.arch, packages: [] }, tcDir, sysroot));

  const layers = py.layers;
  const env: Record<string, string> = {
    PATH: `${join(tcDir, "bin")}:${withSbin(process.env.PATH ?? "/usr/bin:/bin")}`,
    HOME: dirs.tmp,
    TMPDIR: dirs.tmp,
    LC_ALL: "C",
    TZ: "UTC",
    SOURCE_DATE_EPOCH: String(step.project.sourceDateEpoch),
    SCRIPTDIR: root,
    PKGDOWNLOADDIR: join(base, "download"),
    PKGSRCDIR: pkgSrcDir,
    BUILDROOT: buildRoot,
    PKGLOGDIR: join(buildRoot, "log"),
    REPODIR: join(buildRoot, "repo"),
    TCDIR: tcDir,
    PKGBUILDDIR: dirs.build,
    PKGDEPLOYDIR: dirs.deploy,
    PRODUCT: py.product ?? "",
    LAYERCONF: layers?.layerConf ?? "",
    TARGET: recipe.toolchain.target,
    OS_NAME: recipe.reads.OS_NAME ?? py.toolchainVars.get("OS_NAME")?.value ?? "Pygos",
    OS_RELEASE: osRelease(root),
    NUMJOBS: String(step.jobs),
    HOSTTUPLE: py.toolchain.hostTuple,
    CMAKETCFILE: cmakeFile,
    PACKAGELIST: [...step.project.packages.keys()].join(" "),
    DEPENDSLIST: [...step.project.packages.values()].map((p) => `${p.name}: ${(p.recipe.depends ?? []).join(" ")}`).join("\n"),
    PROVIDESLIST: [...py.providers].map(([bin, src]) => `${bin}: ${src}`).join("\n"),
    KILN_HELPERS: HELPERS,
    KILN_TCFILES: layers ? copiesOf(layers, "TOOLCHAIN").map((f) => f.abs).join("\n") : "",
    KILN_LAYERDIRS: layers ? layers.layers.map((l) => l.dir).join("\n") : "",
    KILN_PKGDIR: step.pkg.dir,
    KILN_SCRIPT: join(root, recipe.script),
    KILN_SYSROOT: sysroot,
  };
  // kiln's own helpers too: an installation under /tmp (a CI checkout) is hidden by the sandbox's private /tmp
  const ctx: Ctx = { step, recipe, env, buildRoot, roBinds: [root, dirname(HELPERS), ...tc.roBinds], binds: tc.binds };
  if (recipe.reads.KILN_ROOTFS) {
    // The product's RELEASEPKG: built after the image, which its steps read.
    Object.assign(env, { ROOTFSIMG: join(buildRoot, "rootfs.img"), ROOTFSTAR: join(buildRoot, "rootfs.tar") });
    ctx.roBinds.push(env.ROOTFSIMG!, env.ROOTFSTAR!);
  }

  const srcDir = await prepareSource(ctx, tarball, pkgSrcDir, base);
  ctx.roBinds.push(pkgSrcDir);
  await runStep(ctx, "build", srcDir);
  await runStep(ctx, "deploy", srcDir);
  return packageOutputs(ctx);
}

function withSbin(path: string): string {
  const parts = path.split(":");
  for (const d of ["/usr/sbin", "/sbin"]) if (!parts.includes(d)) parts.push(d);
  return parts.join(":");
}

async function fetchTarball(step: BuildStep, recipe: PygosRecipe, base: string, buildRoot: string): Promise<string | undefined> {
  const m = recipe.meta;
  if (!m.tarball) return undefined;
  const display = step.pkg.file.display;
  const text = await readFile(join(step.project.root, recipe.script), "utf8");
  if (!/^[0-9a-f]{64}$/.test(m.sha256)) {
    throw new KilnError("E_BAD_VALUE", `${display}: SHA256SUM must be 64 lower-case hex digits (TARBALL ${m.tarball} is downloaded only when pinned)`, { location: { file: display, line: lineOf(text, "SHA256SUM") } });
  }
  const url = `${m.url.replace(/\/+$/, "")}/${m.tarball}`;
  let file: string;
  try {
    file = await fetchSource(step.store, url, m.sha256, { offline: step.offline, location: () => ({ file: display, line: lineOf(text, "SHA256SUM") }), onProgress: (s) => step.log.line(s) });
  } catch (err) {
    const e = asKilnError(err);
    throw new KilnError(e.code, e.message, { location: e.location, details: e.details, hint: `${e.hint ? `${e.hint}; ` : ""}log: ${join(buildRoot, "log")}/${step.pkg.name}-download.log.gz and ${step.log.path}`, cause: err });
  }
  // Pygos keeps tarballs in download/; kiln keeps them once in the store and links them there.
  const link = join(base, "download", m.tarball);
  await mkdir(dirname(link), { recursive: true });
  await rm(link, { force: true });
  await symlink(file, link).catch(() => undefined);
  return file;
}

interface StepToolchain {
  /** TCDIR and the staging sysroot as the step sees them. */
  tcDir: string;
  sysroot: string;
  roBinds: string[];
  binds: [string, string][];
}

/** Layers of the toolchain packages among a step's dependencies (TC_KIND=source), in TC_PACKAGES order. */
async function toolchainLayers(step: BuildStep, recipe: PygosRecipe): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  for (const t of recipe.toolchain.kind === "source" ? recipe.toolchain.packages : []) {
    const key = step.node.record.deps[`pkg/${t}`];
    if (!key) continue;
    const desc = await step.store.resolveRef(`${step.project.org}/${t}:${tagOf(key)}`);
    if (desc) out.push(...(await readManifest(step.store, desc)).layers);
  }
  return out;
}

/** Materialize a folder once per content (a stamp file inside says which); concurrent steps of a run share one promise. */
const making = new Map<string, Promise<void>>();
function materialize(dir: string, stamp: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const id = `${dir}\0${stamp}`;
  let p = making.get(id);
  if (!p) {
    p = (async () => {
      const stampFile = join(dir, ".kiln-toolchain");
      if ((await readFile(stampFile, "utf8").catch(() => "")) === stamp) return;
      const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
      try {
        await mkdir(tmp, { recursive: true });
        await fill(tmp);
        await writeFile(join(tmp, ".kiln-toolchain"), stamp);
        await rm(dir, { recursive: true, force: true });
        await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
          // another kiln made it meanwhile: theirs has the same stamp or will be remade by the next run
          if (err.code !== "ENOTEMPTY" && err.code !== "EEXIST") throw err;
        });
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    })();
    making.set(id, p);
    p.catch(() => making.delete(id));
  }
  return p;
}

/**
 * TCDIR is the product's toolchain folder, BUILDROOT/toolchain, as in Pygos
 * (docs/pygos.md). host/debian: the machine's TARGET-* tools with wrapped
 * compilers, written once per product and read-only to the steps; the DEPENDS
 * go into the step's own staging sysroot (KILN_SYSROOT, which the wrappers
 * read). source: the toolchain packages unpacked there once; under bubblewrap
 * each step sees its own copy of the toolchain's sysroot, $TCDIR/$TARGET,
 * with its DEPENDS added, mounted over it, so steps run in parallel without
 * seeing each other's files. A toolchain package sees the toolchain packages
 * it depends on at TCDIR (its own folder mounted there). Without bubblewrap
 * TCDIR of a source toolchain is the step's scratch folder.
 */
async function setUpToolchain(step: BuildStep, recipe: PygosRecipe, buildRoot: string, sandboxed: boolean): Promise<StepToolchain> {
  const tc = recipe.toolchain;
  const product = join(buildRoot, "toolchain");
  const w = step.workDir;
  if (tc.kind !== "source") {
    const sysroot = join(w, "sysroot");
    const hardening = recipe.reads.TC_HARDENING === "yes";
    const spec = { kind: tc.kind, target: tc.target, hostTuple: "", arch: step.arch, packages: [] };
    const tools = (await readdir("/usr/bin")).filter((n) => n.startsWith(`${tc.target}-`)).sort();
    await materialize(product, stableJson({ f: 1, tc: spec, hardening, tools }), (tmp) => writeToolchainDir(spec, tmp, hardening));
    await unpackLayers(step.store, step.depLayers, sysroot);
    return { tcDir: product, sysroot, roBinds: [product], binds: [] };
  }
  const tcLayers = await toolchainLayers(step, recipe);
  const isTc = tc.packages.includes(step.pkg.name);
  const own = join(w, "toolchain");
  const depLayers = step.depLayers.filter((l) => !tcLayers.some((t) => t.digest === l.digest));
  if (sandboxed && !isTc) {
    await materialize(product, stableJson({ f: 1, layers: tcLayers.map((l) => l.digest) }), async (tmp) => {
      await unpackLayers(step.store, tcLayers, tmp);
      await mkdir(join(tmp, tc.target), { recursive: true });
    });
    const sysroot = join(w, "sysroot");
    await mkdir(sysroot, { recursive: true });
    await run("cp", ["-a", "--reflink=auto", `${join(product, tc.target)}/.`, `${sysroot}/`]);
    await unpackLayers(step.store, depLayers, sysroot);
    return { tcDir: product, sysroot: join(product, tc.target), roBinds: [product], binds: [[sysroot, join(product, tc.target)]] };
  }
  await unpackLayers(step.store, tcLayers, own);
  await unpackLayers(step.store, depLayers, join(own, tc.target));
  if (!sandboxed) return { tcDir: own, sysroot: join(own, tc.target), roBinds: [], binds: [] };
  await mkdir(product, { recursive: true });
  return { tcDir: product, sysroot: join(product, tc.target), roBinds: [], binds: [[own, product]] };
}

/** The shared src/ folder: unpacked and prepared once per tarball and package files, then only read. */
async function prepareSource(ctx: Ctx, tarball: string | undefined, pkgSrcDir: string, base: string): Promise<string> {
  const srcdir = ctx.recipe.meta.srcdir;
  const final = srcdir ? join(pkgSrcDir, srcdir) : pkgSrcDir;
  if (await stat(join(pkgSrcDir, ".kiln-prepared")).then(() => true, () => false)) {
    ctx.step.log.line(`kiln: source ${pkgSrcDir} already prepared`);
    return final;
  }
  const tmp = join(base, "src", `.tmp-${ctx.step.pkg.name}-${process.pid}-${randomBytes(4).toString("hex")}`);
  await mkdir(tmp, { recursive: true });
  try {
    // a fixed umask: --no-same-permissions applies it, and the caller's (077) must not reach the outputs
    if (tarball) await run("sh", ["-c", 'umask 022; exec tar "$@"', "tar", "-xf", tarball, "-C", tmp, "--no-same-owner", "--no-same-permissions"]);
    const work = srcdir ? join(tmp, srcdir) : tmp;
    if (!(await stat(work).then((s) => s.isDirectory(), () => false))) {
      throw new KilnError("E_PYGOS_STEP", `SRCDIR=${srcdir}, but ${ctx.recipe.meta.tarball} has no such folder`, { location: { file: ctx.step.pkg.file.display } });
    }
    await runStep({ ...ctx, env: { ...ctx.env, PKGSRCDIR: tmp } }, "prepare", work, [tmp]);
    await writeFile(join(tmp, ".kiln-prepared"), "");
    await rename(tmp, pkgSrcDir).catch(async (err: NodeJS.ErrnoException) => {
      // Another build prepared the same source meanwhile: use theirs.
      if (err.code !== "ENOTEMPTY" && err.code !== "EEXIST") throw err;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return final;
}

const NEED: Record<string, string> = { prepare: "prepare build deploy", build: "prepare build deploy", deploy: "deploy" };

async function runStep(ctx: Ctx, name: "prepare" | "build" | "deploy", srcDir: string, rw: string[] = []): Promise<void> {
  const { step } = ctx;
  const driver = join(step.workDir, "driver.sh");
  await writeFile(driver, DRIVER);
  const logPath = join(ctx.buildRoot, "log", `${step.pkg.name}-${name}.log.gz`);
  const log = await StepLog.create(logPath);
  const env = { ...ctx.env, KILN_STEP: name, KILN_SRC: srcDir, KILN_NEED: NEED[name]! };
  const box = await sandboxArgs(step.workDir, step.bus);
  let cmd = (await whichTool("bash")) ?? "bash";
  let args = [driver];
  if (box) {
    // bubblewrap's private /tmp would hide a tree or build root under /tmp: bind them back, read-only, before the writable folders.
    const ro = ctx.roBinds.flatMap((d) => ["--ro-bind", d, d]);
    const writable = [...ctx.binds.flatMap(([from, at]) => ["--bind", from, at]), ...rw.flatMap((d) => ["--bind", d, d])];
    cmd = box.path;
    args = [...box.args.slice(0, -3), ...ro, ...box.args.slice(-3), ...writable, "--", "bash", driver];
  }
  step.log.line(`kiln: ${name} (log: ${logPath})`);
  log.line(`$ ${cmd} ${args.join(" ")}`);
  const code = await spawnGroup(cmd, args, {
    env,
    cwd: step.workDir,
    onOutput: (b) => {
      log.write(b);
      step.log.write(b);
    },
  });
  const tailLines = log.tail(20);
  await log.close();
  if (code === 0) return;
  const display = step.pkg.file.display;
  if (code === 90) {
    const fn = /defines no function (\w+)/.exec(tailLines.join("\n"))?.[1] ?? name;
    throw new KilnError("E_PYGOS_FUNCTION", `${display} defines no function ${fn}()`, { location: { file: display }, details: tailLines.slice(-3), hint: `define ${fn}() in the script; log: ${logPath}` });
  }
  const text = await readFile(join(step.project.root, ctx.recipe.script), "utf8");
  const line = text.split("\n").findIndex((l) => new RegExp(`^\\s*(function\\s+)?${name}\\s*\\(`).test(l));
  const outside = tailLines.some((l) => /Read-only file system/.test(l));
  throw new KilnError(outside ? "E_WRITE_OUTSIDE_DESTDIR" : "E_PYGOS_STEP", outside ? `${name}() of ${display} tried to write outside PKGBUILDDIR/PKGDEPLOYDIR` : `${name}() of ${display} failed with exit code ${code}`, {
    location: { file: display, ...(line >= 0 ? { line: line + 1 } : {}) },
    details: tailLines,
    hint: `${outside ? "build in $PKGBUILDDIR and install into $PKGDEPLOYDIR; the source folder is read-only after prepare; " : ""}log: ${logPath}`,
    exitCode: code,
  });
}

/** Each sub package becomes an image of its own (ORG/bin/NAME:TAG); the package's image holds them all. */
async function packageOutputs(ctx: Ctx): Promise<LayerEntry[]> {
  const { step, recipe } = ctx;
  const subs = recipe.meta.subpkg.length ? recipe.meta.subpkg : [step.pkg.name];
  const epoch = step.project.sourceDateEpoch;
  const all: LayerEntry[] = [];
  const records: Record<string, SubPackageRecord> = {};
  for (const name of subs) {
    const sub = await readSubPackage(name, join(step.workDir, "deploy"), join(step.workDir, "build"), { file: step.pkg.file.display });
    const layer = await writeLayer(step.store, sub.entries, epoch);
    const ref = `${step.project.org}/bin/${name}:${tagOf(step.node.key)}`;
    const labels = { "dev.kiln.package": name, "dev.kiln.pygos.source": step.pkg.name, "dev.kiln.pygos.requires": sub.requires.join(" "), "org.opencontainers.image.version": recipe.meta.version, ...prefixed(sub.desc) };
    const manifest = await writeImage(step.store, { arch: step.arch, layers: [layer], created: epoch, labels, annotations: { [KEY_ANNOTATION]: step.node.key } });
    await step.store.setRef(ref, { ...manifest, annotations: { [KEY_ANNOTATION]: step.node.key } });
    records[name] = { ref, manifest: manifest.digest, layer, requires: sub.requires, version: recipe.meta.version };
    step.log.line(`kiln: binary package ${name}: ${sub.entries.length} entries, requires [${sub.requires.join(" ")}] → ${ref}`);
    all.push(...sub.entries);
  }
  if (step.labels) step.labels[SUBPACKAGES_LABEL] = stableJson(records);
  return all;
}

function prefixed(desc: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(desc).map(([k, v]) => [`dev.kiln.pygos.desc.${k}`, v]));
}
