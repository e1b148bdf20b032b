import { cp, mkdir, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { parseMode } from "../../config/mode.js";
import type { ScriptRecipe } from "../../config/schema.js";
import { locate } from "../../config/yaml.js";
import { KilnError } from "../../core/errors.js";
import { run, spawnGroup } from "../../core/exec.js";
import { whichTool } from "../../core/tools.js";
import type { LayerEntry } from "../layer.js";
import { fetchSource } from "../sources.js";
import type { BuildStep } from "../step.js";
import { walkTree } from "../tree.js";
import { unpackLayers } from "../unpack.js";
import { sandboxArgs } from "./sandbox.js";

const ARCHIVE_RE = /\.(tar|tar\.gz|tgz|tar\.xz|txz|tar\.bz2|tbz2|tar\.zst)$/;

/**
 * A `script` package: sources into $SRCDIR, build dependencies unpacked into
 * $SYSROOT, then the script runs (under bubblewrap: read-only host, no
 * network, only the scratch folder writable) and what it put in $DESTDIR
 * becomes the layer, owned by root unless the recipe says otherwise.
 */
export async function buildScript(step: BuildStep): Promise<LayerEntry[]> {
  const recipe = step.pkg.recipe as ScriptRecipe;
  const w = step.workDir;
  const dirs = { src: join(w, "src"), dest: join(w, "dest"), sysroot: join(w, "sysroot"), tmp: join(w, "tmp"), build: join(w, "build") };
  await Promise.all(Object.values(dirs).map((d) => mkdir(d, { recursive: true })));

  await stageSources(step, recipe, dirs.src);
  await unpackLayers(step.store, step.depLayers, dirs.sysroot);

  const env: Record<string, string> = {
    // sbin too: build tools such as depmod live there, and a non-root PATH often lacks it.
    PATH: withSbin(process.env.PATH ?? "/usr/bin:/bin"),
    HOME: dirs.tmp,
    TMPDIR: dirs.tmp,
    LC_ALL: "C",
    TZ: "UTC",
    SOURCE_DATE_EPOCH: String(step.project.sourceDateEpoch),
    DESTDIR: dirs.dest,
    SRCDIR: dirs.src,
    SYSROOT: dirs.sysroot,
    BUILDDIR: dirs.build,
    PKGNAME: step.pkg.name,
    KILN_ARCH: step.arch,
    TARGETARCH: step.arch,
    NUMJOBS: String(step.jobs),
    ...recipe.env,
  };
  // umask and strict mode are part of the contract, whatever the caller's shell had.
  const scriptFile = join(w, "build.sh");
  await writeFile(scriptFile, `set -euo pipefail\numask 022\ncd "$SRCDIR"\n${recipe.script}\n`);

  const bwrap = await sandboxArgs(w, step.bus);
  const argv = bwrap ? [...bwrap.args, "--", "bash", scriptFile] : ["bash", scriptFile];
  const cmd = bwrap ? bwrap.path : (await whichTool("bash")) ?? "bash";
  step.log.line(`$ ${argv.join(" ")}`);
  const code = await spawnGroup(cmd, bwrap ? argv : argv.slice(1), { env, cwd: dirs.src, onOutput: (b) => step.log.write(b) });
  if (code !== 0) {
    const tail = step.log.tail(20);
    const outside = tail.some((l) => /Read-only file system/.test(l));
    throw new KilnError(outside ? "E_WRITE_OUTSIDE_DESTDIR" : "E_SCRIPT_FAILED", outside ? `the build script of ${step.pkg.name} tried to write outside $DESTDIR` : `the build script of ${step.pkg.name} exited with code ${code}`, {
      location: locate(step.pkg.file, ["script"]),
      details: tail,
      hint: outside ? "install into \"$DESTDIR\"; only $DESTDIR, $SRCDIR, $BUILDDIR and $TMPDIR are writable" : `full log: ${step.log.path}`,
      exitCode: code,
    });
  }
  const entries = await walkTree(dirs.dest, "/");
  return applyOwnership(entries, recipe);
}

function withSbin(path: string): string {
  const parts = path.split(":");
  for (const d of ["/usr/sbin", "/sbin"]) if (!parts.includes(d)) parts.push(d);
  return parts.join(":");
}

async function stageSources(step: BuildStep, recipe: ScriptRecipe, srcDir: string): Promise<void> {
  for (const [i, s] of (recipe.sources ?? []).entries()) {
    if (s.path !== undefined) {
      const from = join(step.pkg.dir, s.path);
      await cp(from, join(srcDir, s.dest ?? basename(from)), { recursive: true, verbatimSymlinks: true });
      continue;
    }
    const url = s.url!;
    const file = await fetchSource(step.store, url, s.sha256!, {
      offline: step.offline,
      location: () => locate(step.pkg.file, ["sources", i, "sha256"]),
      onProgress: (m) => step.log.line(m),
    });
    const name = basename(new URL(url).pathname) || "download";
    const extract = s.extract ?? ARCHIVE_RE.test(name);
    if (extract) {
      const into = join(srcDir, s.dest ?? ".");
      await mkdir(into, { recursive: true });
      // a fixed umask: --no-same-permissions applies it, and the caller's (077) must not reach the outputs
    await run("sh", ["-c", 'umask 022; exec tar "$@"', "tar", "-xf", file, "-C", into, "--no-same-owner", "--no-same-permissions"]);
    } else {
      await cp(file, join(srcDir, s.dest ?? name));
    }
  }
}

function applyOwnership(entries: LayerEntry[], recipe: ScriptRecipe): LayerEntry[] {
  const rules = new Map((recipe.ownership ?? []).map((o) => [o.path.replace(/^\/+|\/+$/g, ""), o]));
  if (!rules.size) return entries;
  return entries.map((e) => {
    const o = rules.get(e.path.replace(/^\/+|\/+$/g, ""));
    if (!o) return e;
    return { ...e, uid: o.uid ?? e.uid, gid: o.gid ?? e.gid, mode: o.mode === undefined ? e.mode : parseMode(o.mode) };
  });
}
