import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { TarEntry as Header } from "../core/tar-header.js";
import type { LayerEntry } from "../build/layer.js";
import { KilnError } from "../core/errors.js";
import { parseRelations, type Relation } from "./control.js";
import { member, readArMembers, readControl, walkTar } from "./deb.js";
import { globToRegExp } from "./glob.js";
import { buildLdCache } from "./ldcache.js";
import type { LockedDeb } from "./lockfile.js";
import { formatPackageList, type InstalledPackage, installedPackage, PACKAGES_JSON } from "./manifest.js";
import { accounts, busyboxLinks, usrmerge } from "./scripts.js";
import { type Node, readBody, Tree } from "./tree.js";
import { satisfiesVersion } from "./version.js";

/** Bodies up to this size are kept in memory, while the total stays under MEMORY_BUDGET. */
const SMALL_FILE = 256 * 1024;
const MEMORY_BUDGET = 128 * 1024 * 1024;
/** Files read whatever `paths` keeps: copyright texts (for the package list) and base-passwd's account lists. */
const CAPTURE = /^\/usr\/share\/(doc\/[^/]+\/copyright|base-passwd\/(passwd|group)\.master)$/;
const CAPTURE_MAX = 4 * 1024 * 1024;

/** One tar entry of a .deb, read but not yet installed. */
interface Incoming {
  /** In-image path as the package names it. */
  path: string;
  /** The name in data.tar, for messages. */
  name: string;
  entry: LayerEntry;
  group?: number;
  /** Whether `paths` keeps it (directories and symlinks are recorded either way). */
  kept: boolean;
}

/** What one .deb holds, read but not yet installed. */
export interface Contents {
  deb: LockedDeb;
  ctext: string;
  maSame: boolean;
  /** Entries in data.tar order. */
  entries: Incoming[];
  listed: string[];
  md5sums?: Buffer;
  conffiles: Set<string>;
  confMd5: Map<string, { hex?: string }>;
  captured: Map<string, Buffer>;
}

interface Status {
  name: string;
  arch: string;
  text: string;
}

export interface InstallOptions {
  /** `paths` of the recipe: what to keep. */
  keep: (path: string) => boolean;
  /** `overwrite` globs of the recipe. */
  overwrite?: string[];
  /** Scratch folder for large bodies. */
  workDir: string;
  log: (line: string) => void;
}

export interface FinishOptions {
  arch: string;
  usrmerge?: boolean;
  busyboxLinks?: boolean;
  accounts?: boolean;
  ldconfig?: boolean;
  /** SOURCE_DATE_EPOCH: the last password change in /etc/shadow. */
  epoch: number;
}

const abs = (name: string) => {
  const p = `/${name.replace(/^\.?\/+/, "").replace(/\/+$/, "")}`;
  return p === "/" ? "/" : p;
};

/** One path two packages write, for E_DEBIAN_CONFLICT. */
interface Clash {
  path: string;
  first: string;
  second: string;
  what: string;
}

/**
 * Installs .debs into a Tree, dpkg-like, without running anything: read()
 * several at once, merge() in install order, then finish() into layer
 * entries (with what the recipe's script options ask for and the dpkg
 * database).
 */
export class Installer {
  readonly tree = new Tree();
  private readonly meta: LayerEntry[] = [];
  private readonly statuses: Status[] = [];
  private readonly installed: { ctext: string; deb: LockedDeb }[] = [];
  private readonly captured = new Map<string, Buffer>();
  private readonly pkgs = new Map<string, { version: string; replaces: Relation[] }>();
  private readonly clashes: Clash[] = [];
  private readonly overwrite: RegExp[];
  private bodies = 0;
  private inMemory = 0;
  private groups = 0;
  private readonly bodyDir: string;

  constructor(private readonly opts: InstallOptions) {
    this.bodyDir = join(opts.workDir, "bodies");
    this.overwrite = (opts.overwrite ?? []).map(globToRegExp);
  }

  /**
   * Keep a file body: small ones in memory (up to MEMORY_BUDGET in all), the
   * rest streamed into the scratch folder, so a 400 MiB kernel package never
   * sits in memory and a thousand small files cost no file system round trips.
   */
  private async keepBody(body: AsyncIterable<Buffer>, size: number, md5?: { hex?: string }): Promise<string | Buffer> {
    const h = md5 ? createHash("md5") : undefined;
    if (size <= SMALL_FILE && this.inMemory + size <= MEMORY_BUDGET) {
      const buf = await readAll(body);
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
    const keep = this.opts.keep;
    const members = await readArMembers(file);
    const control = await readControl(file, members);
    const ctext = control.get("control")!.toString("utf8");
    const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, "m").exec(ctext)?.[1]?.trim();
    if (field("Package") !== d.name || field("Version") !== d.version) {
      throw new KilnError("E_DEBIAN_DEB", `${file} is ${field("Package")} ${field("Version")}, but kiln.lock says ${d.name} ${d.version}`);
    }
    const conffiles = new Set((control.get("conffiles")?.toString("utf8") ?? "").split("\n").map((l) => l.trim().replace(/^remove-on-upgrade\s+/, "")).filter((l) => l.startsWith("/")));
    const c: Contents = { deb: d, ctext, maSame: field("Multi-Arch") === "same", entries: [], listed: [], md5sums: control.get("md5sums"), conffiles, confMd5: new Map(), captured: new Map() };
    const local = new Map<string, Incoming>();
    const missing = new Map<string, { path: string; name: string }[]>();
    const data = member(file, members, "data.tar");
    const escape = (name: string, why = "leaves the root") => new KilnError("E_DEBIAN_PATH", `${d.name}: the entry ${name} ${why}`, { hint: "the package is broken or malicious; kiln does not install it (exclude it, or pick another version)" });

    const put = (inc: Incoming) => {
      c.entries.push(inc);
      if (inc.entry.type !== "directory") local.set(inc.path, inc);
      if (inc.kept) c.listed.push(inc.path);
    };
    await walkTar(file, data, async (h: Header, body: AsyncIterable<Buffer>) => {
      if (h.name.split("/").includes("..")) throw escape(h.name);
      const p = abs(h.name);
      if (p === "/") return;
      const mode = (h.mode ?? 0o644) & 0o7777;
      const uid = h.uid ?? 0;
      const gid = h.gid ?? 0;
      const kept = keep(p);
      if (h.type === "directory") {
        put({ path: p, name: h.name, entry: { path: p, type: "directory", mode, uid, gid }, kept });
        return;
      }
      if (h.type === "symlink") {
        put({ path: p, name: h.name, entry: { path: p, type: "symlink", mode: 0o777, uid, gid, linkname: h.linkname ?? "" }, kept });
        return;
      }
      if (h.type === "file") {
        const size = h.size ?? 0;
        let pre: Buffer | undefined;
        if (CAPTURE.test(p) && size <= CAPTURE_MAX) {
          pre = await readAll(body);
          c.captured.set(p, pre);
        }
        if (!kept) return;
        const md5: { hex?: string } | undefined = conffiles.has(p) ? {} : undefined;
        let source: string | Buffer;
        if (pre) {
          source = pre;
          this.inMemory += pre.length;
          if (md5) md5.hex = createHash("md5").update(pre).digest("hex");
        } else source = await this.keepBody(body, size, md5);
        if (md5) c.confMd5.set(p, md5);
        put({ path: p, name: h.name, entry: { path: p, type: "file", mode, uid, gid, source, size }, group: ++this.groups, kept });
        return;
      }
      if (!kept) return;
      if (h.type === "link") {
        if ((h.linkname ?? "").split("/").includes("..")) throw escape(h.name, `is a hard link to ${h.linkname}, which leaves the root`);
        const target = abs(h.linkname ?? "");
        const t = local.get(target);
        if (t?.group !== undefined) put({ path: p, name: h.name, entry: { ...t.entry, path: p }, group: t.group, kept });
        else {
          missing.set(target, [...(missing.get(target) ?? []), { path: p, name: h.name }]);
          c.listed.push(p);
        }
      } else if (h.type === "character-device" || h.type === "block-device" || h.type === "fifo") {
        put({ path: p, name: h.name, entry: { path: p, type: h.type, mode, uid, gid, devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0 }, kept });
      }
    });
    if (missing.size) {
      // Hard links kept whose target was filtered out: read the targets' bodies in a second pass.
      await walkTar(file, data, async (h, body) => {
        const p = abs(h.name);
        const links = missing.get(p);
        if (!links || h.type !== "file") return;
        const source = await this.keepBody(body, h.size ?? 0);
        const group = ++this.groups;
        for (const l of links) c.entries.push({ path: l.path, name: l.name, entry: { path: l.path, type: "file", mode: (h.mode ?? 0o644) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, source, size: h.size ?? 0 }, group, kept: true });
      });
    }
    this.opts.log(`${d.name} ${d.version} ${d.architecture}: ${c.entries.filter((e) => e.kept && e.entry.type !== "directory").length} entries kept (${Date.now() - t0} ms)`);
    return c;
  }

  private mayOverwrite(path: string): boolean {
    return this.overwrite.some((r) => r.test(path));
  }

  /** Does package `a` declare Replaces on package `b` (at its version)? */
  private replaces(a: string, b: string): boolean {
    const pb = this.pkgs.get(b);
    if (!pb) return false;
    return (this.pkgs.get(a)?.replaces ?? []).some((r) => r.name === b && (!r.op || satisfiesVersion(pb.version, r.op, r.version!)));
  }

  /**
   * Install one package's contents over what is there, in tar order, as
   * dpkg would: a directory stays as the first package made it, a path
   * below a symlinked directory goes where the link leads (relative links
   * inside the image only), and a path another package already wrote is an
   * E_DEBIAN_CONFLICT (reported by finish(), all at once) unless the two are
   * identical symlinks, the recipe's `overwrite` globs allow it (the later
   * package wins), or one package declares Replaces on the other (the
   * replacing one wins, as in dpkg).
   */
  merge(c: Contents): void {
    const pkg = c.deb.name;
    const field = (k: string) => new RegExp(`^${k}:\\s*(.*(?:\\n[ \\t].*)*)$`, "m").exec(c.ctext)?.[1];
    this.pkgs.set(pkg, { version: c.deb.version, replaces: parseRelations(field("Replaces")?.replace(/\n/g, " "), c.deb.architecture).flat() });
    for (const [p, b] of c.captured) this.captured.set(p, b);
    const t = this.tree;
    for (const inc of c.entries) {
      const p = t.installPath(inc.path, pkg, inc.name);
      const node: Node = { entry: { ...inc.entry, path: p }, group: inc.group, owner: pkg };
      if (inc.entry.type === "directory") {
        // A symlink there stays (dpkg keeps a symlinked directory); a file there is a clash.
        if (t.links.has(p)) continue;
        const f = t.files.get(p);
        if (f) this.clash(p, f.owner, pkg, `${f.owner} ships a ${f.entry.type}, ${pkg} a directory`);
        else if (!t.dirs.has(p)) t.dirs.set(p, node);
        continue;
      }
      if (!inc.kept) {
        // A symlink `paths` leaves out still leads later entries.
        if (inc.entry.type === "symlink") t.links.set(p, { target: inc.entry.linkname!, owner: pkg });
        continue;
      }
      const before = t.files.get(p);
      const dir = t.dirs.get(p);
      if (dir) {
        this.clash(p, dir.owner, pkg, `${dir.owner} ships a directory, ${pkg} a ${inc.entry.type}`);
        continue;
      }
      if (before && before.owner !== pkg) {
        const same = before.entry.type === "symlink" && inc.entry.type === "symlink" && before.entry.linkname === inc.entry.linkname;
        if (same) continue;
        if (this.replaces(before.owner, pkg)) {
          this.opts.log(`${p}: ${before.owner} replaces ${pkg}, so its file stays (Replaces)`);
          continue;
        }
        if (this.replaces(pkg, before.owner)) this.opts.log(`${p}: ${pkg} replaces ${before.owner}'s file (Replaces)`);
        else if (this.mayOverwrite(p) || this.mayOverwrite(inc.path)) this.opts.log(`${p}: ${pkg} overwrites ${before.owner}'s file (overwrite)`);
        else this.clash(p, before.owner, pkg, `${before.entry.type} of ${before.owner}, then ${inc.entry.type} of ${pkg}`);
      }
      t.files.set(p, node);
      if (inc.entry.type === "symlink") t.links.set(p, { target: inc.entry.linkname!, owner: pkg });
      else t.links.delete(p);
    }
    this.installed.push({ ctext: c.ctext, deb: c.deb });
    this.addMetadata(c);
  }

  private clash(path: string, first: string, second: string, what: string): void {
    this.clashes.push({ path, first, second, what });
  }

  private addMetadata(c: Contents): void {
    const d = c.deb;
    const arch = d.architecture;
    const lines = c.ctext.replace(/\s+$/, "").split("\n");
    const pi = lines.findIndex((l) => l.startsWith("Package:"));
    lines.splice(pi + 1, 0, "Status: install ok installed");
    const confKept = [...c.conffiles].filter((x) => c.confMd5.has(x)).sort();
    if (confKept.length) {
      const di = lines.findIndex((l) => l.startsWith("Description:"));
      const conf = ["Conffiles:", ...confKept.map((x) => ` ${x} ${c.confMd5.get(x)!.hex}`)];
      lines.splice(di < 0 ? lines.length : di, 0, ...conf);
    }
    this.statuses.push({ name: d.name, arch, text: lines.join("\n") });
    const base = `/var/lib/dpkg/info/${d.name}${c.maSame ? `:${arch}` : ""}`;
    const list = `${["/.", ...c.listed].join("\n")}\n`;
    this.meta.push({ path: `${base}.list`, type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from(list) });
    if (c.md5sums) {
      const kept = new Set(c.entries.filter((e) => e.kept && e.entry.type === "file").map((e) => e.path));
      const keptMd5 = c.md5sums.toString("utf8").split("\n").filter((l) => {
        const m = /^[0-9a-f]{32}\s+(.+)$/.exec(l.trim());
        return !!m && kept.has(`/${m[1]}`);
      });
      if (keptMd5.length) this.meta.push({ path: `${base}.md5sums`, type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from(`${keptMd5.join("\n")}\n`) });
    }
    if (confKept.length) this.meta.push({ path: `${base}.conffiles`, type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from(`${confKept.join("\n")}\n`) });
  }

  /** The package list (for the label and PACKAGES_JSON), copyright texts found through the doc directories' symlinks. */
  packageList(): InstalledPackage[] {
    return this.installed.map(({ ctext, deb }) => {
      const path = this.tree.resolve(`/usr/share/doc/${deb.name}/copyright`);
      return installedPackage(ctext, path ? this.captured.get(path)?.toString("utf8") : undefined);
    });
  }

  /**
   * The layer's entries: directories, files (hard links regrouped), what the
   * script options make, the package list, and the dpkg database (subject to
   * `paths`, like the packages' files). Throws the collected
   * E_DEBIAN_CONFLICT first.
   */
  async finish(o: FinishOptions): Promise<LayerEntry[]> {
    if (this.clashes.length) {
      const lines = this.clashes.map((x) => `${x.path}: ${x.what}`);
      const paths = [...new Set(this.clashes.map((x) => x.path))];
      throw new KilnError("E_DEBIAN_CONFLICT", `${paths.length === 1 ? `${paths[0]} is` : `${paths.length} paths are`} written by two packages: ${lines[0]}${lines.length > 1 ? ` (and ${lines.length - 1} more)` : ""}`, {
        details: lines.slice(0, 50),
        hint: "add the path (or a glob) to `overwrite:` in the recipe to let the later package in kiln.lock's order win, or exclude one of the packages",
      });
    }
    const t = this.tree;
    const log = this.opts.log;
    if (o.usrmerge) await usrmerge(t, log);
    if (o.busyboxLinks) await busyboxLinks(t, log);
    if (o.accounts) {
      const hasBasePasswd = this.installed.some((p) => p.deb.name === "base-passwd");
      const master = (n: string) => (hasBasePasswd ? this.captured.get(`/usr/share/base-passwd/${n}.master`) : undefined);
      accounts(t, { passwd: master("passwd"), group: master("group") }, o.epoch, log);
    }
    if (o.ldconfig) await this.ldconfig(o.arch);
    // The package list is metadata like the dpkg database: `paths` filters it too (the image label has it always).
    if (this.opts.keep(PACKAGES_JSON)) t.files.set(PACKAGES_JSON, { entry: { path: PACKAGES_JSON, type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from(formatPackageList(this.packageList())) }, owner: "kiln" });

    const out: LayerEntry[] = [];
    const status = this.statuses
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.arch < b.arch ? -1 : 1))
      .map((s) => `${s.text}\n`)
      .join("\n");
    const keep = this.opts.keep;
    const dpkg = ([
      { path: "/var/lib/dpkg/status", type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from(status) },
      { path: "/var/lib/dpkg/info", type: "directory", mode: 0o755, uid: 0, gid: 0 },
      // Info database layout 1: Multi-Arch: same packages' files are named NAME:ARCH.list.
      { path: "/var/lib/dpkg/info/format", type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from("1\n") },
      { path: "/var/lib/dpkg/updates", type: "directory", mode: 0o755, uid: 0, gid: 0 },
      ...this.meta,
    ] as LayerEntry[]).filter((e) => keep(e.path));
    const needed = new Set<string>();
    for (const p of [...t.files.keys(), ...dpkg.map((e) => e.path)]) {
      for (let q = p.slice(0, p.lastIndexOf("/")); q.length > 0; q = q.slice(0, q.lastIndexOf("/"))) needed.add(q);
    }
    for (const [p, n] of t.dirs) if (!t.files.has(p) && (needed.has(p) || keep(p))) out.push(n.entry);
    // Hard links: the first path of each group (in layer order) holds the body, the others link to it.
    const byGroup = new Map<number, string[]>();
    for (const [p, n] of t.files) if (n.group !== undefined) byGroup.set(n.group, [...(byGroup.get(n.group) ?? []), p]);
    const canonical = new Map<number, string>();
    for (const [g, paths] of byGroup) if (paths.length > 1) canonical.set(g, paths.sort()[0]!);
    for (const [p, n] of t.files) {
      const c = n.group === undefined ? undefined : canonical.get(n.group);
      if (c !== undefined && c !== p) out.push({ path: p, type: "link", mode: n.entry.mode, uid: n.entry.uid, gid: n.entry.gid, linkname: c });
      else out.push(n.entry);
    }
    out.push(...dpkg);
    return out;
  }

  /** ldconfig's work: /etc/ld.so.cache for the target's libraries, and /etc/ld.so.conf (as libc-bin ships it) when there is none. */
  private async ldconfig(arch: string): Promise<void> {
    const t = this.tree;
    const conf = t.resolve("/etc/ld.so.conf") ?? "/etc/ld.so.conf";
    if (!t.files.has(conf)) {
      const text = "include /etc/ld.so.conf.d/*.conf\n\n";
      t.files.set(conf, { entry: { path: conf, type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from(text) }, owner: "kiln:ldconfig" });
    }
    const read = async (p: string) => {
      const hit = t.lookup(p);
      return hit?.node.entry.type === "file" ? (await readBody(hit.node)).toString("utf8") : undefined;
    };
    const r = await buildLdCache(t, arch, read);
    const at = t.resolve("/etc/ld.so.cache") ?? "/etc/ld.so.cache";
    t.files.set(at, { entry: { path: at, type: "file", mode: 0o644, uid: 0, gid: 0, source: r.cache }, owner: "kiln:ldconfig" });
    this.opts.log(`ldconfig: /etc/ld.so.cache lists ${r.libs} libraries of ${r.dirs.join(", ") || "no directory"}`);
  }
}

async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c);
  return Buffer.concat(chunks);
}

