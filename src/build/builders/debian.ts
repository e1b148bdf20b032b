import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Header } from "tar-stream";
import type { DebianRecipe } from "../../config/schema.js";
import { locate } from "../../config/yaml.js";
import { KilnError } from "../../core/errors.js";
import { stableJson } from "../../core/hash.js";
import { member, readArMembers, readControl, walkTar } from "../../debian/deb.js";
import { pathFilter } from "../../debian/glob.js";
import { expandArch, type LockedDeb, lockedDebs, lockSources, readLock } from "../../debian/lockfile.js";
import type { LayerEntry } from "../layer.js";
import { fetchSource } from "../sources.js";
import type { BuildStep } from "../step.js";

/**
 * A `debian` package: the .debs pinned in kiln.lock for this arch, fetched
 * once into the shared download cache (sha256 and size checked), their
 * data.tar streamed straight into layer entries in install order (a later
 * package overwrites an earlier one's file), filtered by `paths`, plus a
 * /var/lib/dpkg/status that lists them. No maintainer script runs.
 */
export async function buildDebian(step: BuildStep): Promise<LayerEntry[]> {
  const recipe = step.pkg.recipe as DebianRecipe;
  const lock = await readLock(step.project.root);
  const debs = lockedDebs(step.project, lock, step.pkg, step.arch);
  if (stableJson(lockSources(debs)) !== stableJson(step.node.record.sources)) {
    throw new KilnError("E_DEBIAN_UNLOCKED", "kiln.lock changed while this build was running", { location: locate(step.pkg.file, ["packages"]), hint: "run the build again" });
  }
  const mirror = (step.project.config.debian?.mirror ?? lock!.mirror).replace(/\/+$/, "");
  step.log.line(`${debs.length} packages from ${mirror} (suite ${lock!.suite})`);
  const inst = new Installer(step, pathFilter(recipe.paths?.map((p) => expandArch(p, step.arch))));
  // Fetch and read several .debs at once (decompression is the slow part); merge them in install order.
  const contents = await mapLimit(debs, Math.max(1, Math.min(4, step.jobs)), async (d) => inst.read(d, await fetchDeb(step, mirror, d)));
  for (const c of contents) inst.merge(c);
  const entries = inst.finish();
  step.log.line(`${entries.length} entries`);
  return entries;
}

/** Run `fn` on every item, `limit` at a time, results in order; after a failure nothing new starts, and the first error is thrown once the running ones end. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const bad = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (bad) throw bad.reason;
  return out;
}

async function fetchDeb(step: BuildStep, mirror: string, d: LockedDeb): Promise<string> {
  const url = `${mirror}/${d.filename}`;
  const location = () => locate(step.pkg.file, ["packages"]);
  let path: string;
  try {
    path = await fetchSource(step.store, url, d.sha256, { offline: step.offline, location, onProgress: (m) => step.log.line(m) });
  } catch (err) {
    if (!(err instanceof KilnError)) throw err;
    if (err.code === "E_SOURCE_CHECKSUM") {
      const got = /has sha256 ([0-9a-f]{64})/.exec(err.message)?.[1] ?? "?";
      throw new KilnError("E_DEBIAN_CHECKSUM", `${d.name} ${d.version} (${url}) has sha256 ${got}, but kiln.lock pins ${d.sha256}`, {
        location: { file: "kiln.lock" },
        hint: "kiln.lock was edited or the mirror serves another file; run kiln lock --update if the mirror is trusted",
      });
    }
    if (err.code === "E_SOURCE_FETCH" && /HTTP (404|410)/.test(err.message)) {
      throw new KilnError("E_DEBIAN_GONE", `${d.name} ${d.version} is no longer on ${mirror} (${d.filename}: ${/HTTP \d+/.exec(err.message)?.[0]})`, {
        location: location(),
        hint: "run kiln lock --update to pin the versions the mirror has now (or set debian.mirror to a snapshot.debian.org URL that still has it)",
      });
    }
    throw err;
  }
  const size = (await stat(path)).size;
  if (size !== d.size) {
    throw new KilnError("E_DEBIAN_CHECKSUM", `${d.name} ${d.version} is ${size} bytes, but kiln.lock pins ${d.size}`, { location: { file: "kiln.lock" }, hint: "run kiln lock --update" });
  }
  return path;
}

/** Bodies up to this size are kept in memory, while the total stays under MEMORY_BUDGET. */
const SMALL_FILE = 256 * 1024;
const MEMORY_BUDGET = 128 * 1024 * 1024;

interface Item {
  entry: LayerEntry;
  /** Files that are hard links of each other share a group. */
  group?: number;
}

/** What one .deb holds, read but not yet installed. */
interface Contents {
  deb: LockedDeb;
  ctext: string;
  maSame: boolean;
  dirs: LayerEntry[];
  files: [string, Item][];
  listed: string[];
  md5sums?: Buffer;
  conffiles: Set<string>;
  confMd5: Map<string, { hex?: string }>;
}

interface Status {
  name: string;
  arch: string;
  text: string;
}

const abs = (name: string) => {
  const p = `/${name.replace(/^\.?\/+/, "").replace(/\/+$/, "")}`;
  return p === "/" ? "/" : p;
};

/** Installs .debs into a map of in-image paths, dpkg-like, without running anything. */
class Installer {
  private readonly files = new Map<string, Item>();
  private readonly dirs = new Map<string, LayerEntry>();
  private readonly meta: LayerEntry[] = [];
  private readonly statuses: Status[] = [];
  private bodies = 0;
  private inMemory = 0;
  private groups = 0;
  private readonly bodyDir: string;

  constructor(
    private readonly step: BuildStep,
    private readonly keep: (path: string) => boolean,
  ) {
    this.bodyDir = join(step.workDir, "bodies");
  }

  /**
   * Keep a file body: small ones in memory (up to MEMORY_BUDGET in all), the
   * rest streamed into the scratch folder, so a 400 MiB kernel package never
   * sits in memory and a thousand small files cost no file system round trips.
   */
  private async keepBody(body: AsyncIterable<Buffer>, size: number, md5?: { hex?: string }): Promise<string | Buffer> {
    const h = md5 ? createHash("md5") : undefined;
    if (size <= SMALL_FILE && this.inMemory + size <= MEMORY_BUDGET) {
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(c);
      const buf = Buffer.concat(chunks);
      this.inMemory += buf.length;
      if (md5) md5.hex = h!.update(buf).digest("hex");
      return buf;
    }
    if (this.bodies === 0) await mkdir(this.bodyDir, { recursive: true });
    const file = join(this.bodyDir, String(this.bodies++));
    const sink = createWriteStream(file, { flags: "wx", mode: 0o600 });
    if (h) {
      const t = new Transform({
        transform(c: Buffer, _e, cb) {
          h.update(c);
          cb(null, c);
        },
      });
      await pipeline(body, t, sink);
      md5!.hex = h.digest("hex");
    } else {
      await pipeline(body, sink);
    }
    return file;
  }

  /** Read one .deb into its entries (in tar order) without touching the shared state: several run at once. */
  async read(d: LockedDeb, file: string): Promise<Contents> {
    const t0 = Date.now();
    const members = await readArMembers(file);
    const control = await readControl(file, members);
    const ctext = control.get("control")!.toString("utf8");
    const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, "m").exec(ctext)?.[1]?.trim();
    if (field("Package") !== d.name || field("Version") !== d.version) {
      throw new KilnError("E_DEBIAN_DEB", `${file} is ${field("Package")} ${field("Version")}, but kiln.lock says ${d.name} ${d.version}`);
    }
    const conffiles = new Set((control.get("conffiles")?.toString("utf8") ?? "").split("\n").map((l) => l.trim().replace(/^remove-on-upgrade\s+/, "")).filter((l) => l.startsWith("/")));
    const c: Contents = { deb: d, ctext, maSame: field("Multi-Arch") === "same", dirs: [], files: [], listed: [], md5sums: control.get("md5sums"), conffiles, confMd5: new Map() };
    const local = new Map<string, Item>();
    const missing = new Map<string, string[]>();
    const data = member(file, members, "data.tar");

    const put = (p: string, item: Item) => {
      c.files.push([p, item]);
      local.set(p, item);
      c.listed.push(p);
    };
    await walkTar(file, data, async (h: Header, body: AsyncIterable<Buffer>) => {
      const p = abs(h.name);
      if (p === "/") return;
      if (p.split("/").includes("..")) throw new KilnError("E_DEBIAN_DEB", `${d.name}: the entry ${h.name} leaves the root`);
      const mode = (h.mode ?? 0o644) & 0o7777;
      const uid = h.uid ?? 0;
      const gid = h.gid ?? 0;
      if (h.type === "directory") {
        c.dirs.push({ path: p, type: "directory", mode, uid, gid });
        if (this.keep(p)) c.listed.push(p);
        return;
      }
      if (!this.keep(p)) return;
      if (h.type === "file" || h.type === "contiguous-file") {
        const md5 = conffiles.has(p) ? {} : undefined;
        const source = await this.keepBody(body, h.size ?? 0, md5);
        if (md5) c.confMd5.set(p, md5);
        put(p, { entry: { path: p, type: "file", mode, uid, gid, source, size: h.size ?? 0 }, group: ++this.groups });
      } else if (h.type === "symlink") {
        put(p, { entry: { path: p, type: "symlink", mode: 0o777, uid, gid, linkname: h.linkname ?? "" } });
      } else if (h.type === "link") {
        const target = abs(h.linkname ?? "");
        const t = local.get(target);
        if (t?.group !== undefined) put(p, { entry: { ...t.entry, path: p }, group: t.group });
        else {
          missing.set(target, [...(missing.get(target) ?? []), p]);
          c.listed.push(p);
        }
      } else if (h.type === "character-device" || h.type === "block-device" || h.type === "fifo") {
        put(p, { entry: { path: p, type: h.type, mode, uid, gid, devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0 } });
      }
    });
    if (missing.size) {
      // Hard links kept whose target was filtered out: read the targets' bodies in a second pass.
      await walkTar(file, data, async (h, body) => {
        const p = abs(h.name);
        const links = missing.get(p);
        if (!links || (h.type !== "file" && h.type !== "contiguous-file")) return;
        const source = await this.keepBody(body, h.size ?? 0);
        const group = ++this.groups;
        for (const l of links) c.files.push([l, { entry: { path: l, type: "file", mode: (h.mode ?? 0o644) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, source, size: h.size ?? 0 }, group }]);
      });
    }
    this.step.log.line(`${d.name} ${d.version} ${d.architecture}: ${c.files.length} entries kept (${Date.now() - t0} ms)`);
    return c;
  }

  /** Install one package's contents over what is there: files replace files, a directory stays as the first package made it (as dpkg does). */
  merge(c: Contents): void {
    for (const e of c.dirs) if (!this.dirs.has(e.path)) this.dirs.set(e.path, e);
    for (const [p, item] of c.files) this.files.set(p, item);
    this.addMetadata(c.deb, c.ctext, c.maSame, c.listed, c.md5sums, c.conffiles, c.confMd5);
  }

  private addMetadata(d: LockedDeb, ctext: string, maSame: boolean, listed: string[], md5sums: Buffer | undefined, conffiles: Set<string>, confMd5: Map<string, { hex?: string }>): void {
    const arch = d.architecture;
    const lines = ctext.replace(/\s+$/, "").split("\n");
    const pi = lines.findIndex((l) => l.startsWith("Package:"));
    lines.splice(pi + 1, 0, "Status: install ok installed");
    const confKept = [...conffiles].filter((c) => confMd5.has(c)).sort();
    if (confKept.length) {
      const di = lines.findIndex((l) => l.startsWith("Description:"));
      const conf = ["Conffiles:", ...confKept.map((c) => ` ${c} ${confMd5.get(c)!.hex}`)];
      lines.splice(di < 0 ? lines.length : di, 0, ...conf);
    }
    this.statuses.push({ name: d.name, arch, text: lines.join("\n") });
    const base = `/var/lib/dpkg/info/${d.name}${maSame ? `:${arch}` : ""}`;
    const list = `${["/.", ...listed].join("\n")}\n`;
    this.meta.push({ path: `${base}.list`, type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from(list) });
    if (md5sums) {
      const keptMd5 = md5sums.toString("utf8").split("\n").filter((l) => {
        const m = /^[0-9a-f]{32}\s+(.+)$/.exec(l.trim());
        return !!m && this.files.has(`/${m[1]}`);
      });
      if (keptMd5.length) this.meta.push({ path: `${base}.md5sums`, type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from(`${keptMd5.join("\n")}\n`) });
    }
    if (confKept.length) this.meta.push({ path: `${base}.conffiles`, type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from(`${confKept.join("\n")}\n`) });
  }

  /** The layer's entries: directories, files (hard links regrouped), and the dpkg database, all subject to `paths`. */
  finish(): LayerEntry[] {
    const out: LayerEntry[] = [];
    const status = this.statuses
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.arch < b.arch ? -1 : 1))
      .map((s) => `${s.text}\n`)
      .join("\n");
    const dpkg = ([
      { path: "/var/lib/dpkg/status", type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from(status) },
      { path: "/var/lib/dpkg/info", type: "directory", mode: 0o755, uid: 0, gid: 0 },
      // Info database layout 1: Multi-Arch: same packages' files are named NAME:ARCH.list.
      { path: "/var/lib/dpkg/info/format", type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from("1\n") },
      { path: "/var/lib/dpkg/updates", type: "directory", mode: 0o755, uid: 0, gid: 0 },
      ...this.meta,
    ] as LayerEntry[]).filter((e) => this.keep(e.path));
    const needed = new Set<string>();
    for (const p of [...this.files.keys(), ...dpkg.map((e) => e.path)]) {
      for (let q = p.slice(0, p.lastIndexOf("/")); q.length > 0; q = q.slice(0, q.lastIndexOf("/"))) needed.add(q);
    }
    for (const [p, e] of this.dirs) if (!this.files.has(p) && (needed.has(p) || this.keep(p))) out.push(e);
    // Hard links: the first path of each group (in layer order) holds the body, the others link to it.
    const byGroup = new Map<number, string[]>();
    for (const [p, it] of this.files) if (it.group !== undefined) byGroup.set(it.group, [...(byGroup.get(it.group) ?? []), p]);
    const canonical = new Map<number, string>();
    for (const [g, paths] of byGroup) if (paths.length > 1) canonical.set(g, paths.sort()[0]!);
    for (const [p, it] of this.files) {
      const c = it.group === undefined ? undefined : canonical.get(it.group);
      if (c !== undefined && c !== p) out.push({ path: p, type: "link", mode: it.entry.mode, uid: it.entry.uid, gid: it.entry.gid, linkname: c });
      else out.push(it.entry);
    }
    out.push(...dpkg);
    return out;
  }
}
