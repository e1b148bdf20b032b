import { spawn } from "node:child_process";
import { access, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import type { Project } from "../config/project.js";
import { writeFileAtomic } from "../core/atomic.js";
import { KilnError } from "../core/errors.js";
import { run } from "../core/exec.js";
import { sha256Hex } from "../core/hash.js";
import { runSignal } from "../core/interrupt.js";
import { whichTool } from "../core/tools.js";
import type { Store } from "../store/layout.js";
import { osCodename, readAptSources } from "./apt-sources.js";
import { parseStanzas, type Stanza } from "./control.js";
import type { LockFile } from "./lockfile.js";
import { INDEX_FIELDS, Universe } from "./resolve.js";

export const DEFAULT_MIRROR = "http://deb.debian.org/debian";
export const DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

/** Where Debian packages come from, and how the answer was found (for messages). */
export interface DebianSettings {
  mirror: string;
  suite: string;
  components: string[];
  /** The keyring for InRelease signatures; undefined: none found (then nothing is verified by signature). */
  keyring?: string;
  from: { mirror: string; suite: string };
}

const exists = (p: string) => access(p).then(() => true, () => false);
const trimSlash = (u: string) => u.replace(/\/+$/, "");

/**
 * Mirror, suite and components: kiln.yml first, then the existing kiln.lock
 * (so a lock made elsewhere is re-used as it is), then the machine's apt
 * sources (the first `deb` source that is not a security or flat archive),
 * then deb.debian.org and /etc/os-release's codename.
 */
export async function debianSettings(project: Project, lock?: LockFile, aptRoot = "/etc/apt"): Promise<DebianSettings> {
  const cfg = project.config.debian ?? {};
  const needApt = !cfg.mirror || !cfg.suite || !cfg.keyring;
  const apt = needApt ? (await readAptSources(aptRoot)).find((s) => /^(https?|file):/.test(s.uri) && s.suites[0] && !s.suites[0].endsWith("/") && !/-security$/.test(s.suites[0])) : undefined;
  const pick = (conf: string | undefined, locked: string | undefined, fromApt: string | undefined, what: string) =>
    conf ? { v: conf, from: `${project.file.display} (debian.${what})` } : locked ? { v: locked, from: "kiln.lock" } : fromApt ? { v: fromApt, from: apt!.file } : undefined;
  const mirror = pick(cfg.mirror, lock?.mirror, apt?.uri, "mirror") ?? { v: DEFAULT_MIRROR, from: "the default" };
  let suite = pick(cfg.suite, lock?.suite, apt?.suites[0], "suite");
  if (!suite) {
    const code = await osCodename();
    if (code) suite = { v: code, from: "/etc/os-release" };
  }
  if (!suite) {
    throw new KilnError("E_BAD_VALUE", "no Debian suite: kiln.yml does not set debian.suite and the machine's apt sources name none", {
      location: { file: project.file.display },
      hint: "add to kiln.yml:  debian: { suite: bookworm }",
    });
  }
  let keyring: string | undefined;
  if (cfg.keyring) {
    keyring = cfg.keyring.startsWith("/") ? cfg.keyring : join(project.root, cfg.keyring);
    if (!(await exists(keyring))) {
      throw new KilnError("E_BAD_VALUE", `the keyring ${keyring} (debian.keyring) does not exist`, { location: { file: project.file.display }, hint: "install debian-archive-keyring, or fix the path" });
    }
  } else if (apt?.signedBy && trimSlash(apt.uri) === trimSlash(mirror.v) && (await exists(apt.signedBy))) {
    keyring = apt.signedBy;
  } else if (await exists(DEFAULT_KEYRING)) {
    keyring = DEFAULT_KEYRING;
  }
  return {
    mirror: trimSlash(mirror.v),
    suite: suite.v,
    components: cfg.components ?? (lock?.components.length ? lock.components : ["main"]),
    keyring,
    from: { mirror: mirror.from, suite: suite.from },
  };
}

export interface ReleaseInfo {
  suite: string;
  codename: string;
  architectures: string[];
  components: string[];
  acquireByHash: boolean;
  /** Release's SHA256 section: path → hash and size. */
  files: Map<string, { sha256: string; size: number }>;
  /** "gpgv" when the signature was checked against the keyring, else why not. */
  verified: string;
}

export interface ArchiveOptions {
  offline: boolean;
  store: Store;
  log?: (line: string) => void;
}

async function download(url: string): Promise<Buffer | undefined> {
  if (url.startsWith("file://")) {
    return readFile(fileURLToPath(url)).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return undefined;
      throw e;
    });
  }
  let res: Response;
  try {
    res = await fetch(url, { signal: runSignal, redirect: "follow" });
  } catch (err) {
    if (runSignal.aborted) throw new KilnError("E_INTERRUPTED", "interrupted during a download");
    throw new KilnError("E_DEBIAN_INDEX", `cannot reach ${url}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`, {
      hint: "check the mirror URL and the network (or use --offline with indexes cached by an earlier kiln lock)",
    });
  }
  if (res.status === 404 || res.status === 410) return undefined;
  if (!res.ok) throw new KilnError("E_DEBIAN_INDEX", `cannot download ${url}: HTTP ${res.status} ${res.statusText}`);
  return Buffer.from(await res.arrayBuffer());
}

/** The text a clearsigned message signs (RFC 4880 §7: dash-escaping undone), for when gpgv cannot check it. */
function clearsignedText(text: string): string {
  if (!text.startsWith("-----BEGIN PGP SIGNED MESSAGE-----")) return text;
  const body = text.slice(text.indexOf("\n\n") + 2);
  const end = body.indexOf("\n-----BEGIN PGP SIGNATURE-----");
  return (end >= 0 ? body.slice(0, end) : body).split("\n").map((l) => (l.startsWith("- ") ? l.slice(2) : l)).join("\n");
}

async function gpgvVerify(store: Store, keyring: string, files: { data: Buffer; sig?: Buffer }, what: string): Promise<string> {
  const dir = store.tempPath("gpgv");
  await mkdir(dir, { recursive: true });
  try {
    const data = join(dir, "data");
    await writeFile(data, files.data);
    const args = ["--keyring", keyring];
    if (files.sig) {
      await writeFile(join(dir, "data.gpg"), files.sig);
      args.push(join(dir, "data.gpg"), data);
    } else {
      args.push("--output", join(dir, "signed"), data);
    }
    try {
      await run("gpgv", args, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C", GNUPGHOME: dir }, tailLines: 6 });
      // The text gpgv vouches for, not the file as downloaded.
      return files.sig ? files.data.toString("utf8") : await readFile(join(dir, "signed"), "utf8");
    } catch (err) {
      const e = err as KilnError;
      throw new KilnError("E_DEBIAN_INDEX", `the signature of ${what} does not verify with ${keyring}`, {
        command: e.command,
        details: e.details,
        hint: "the mirror may be compromised or the keyring outdated (install the current debian-archive-keyring, or set debian.keyring in kiln.yml)",
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Fetch dists/SUITE/InRelease (or Release + Release.gpg), check its signature
 * with gpgv when gpgv and a keyring exist, check that it is the suite asked
 * for and not expired, and parse its SHA256 list. The verified file is kept in
 * the store so --offline can use it again (it is verified again each time).
 */
export async function fetchRelease(s: DebianSettings, opts: ArchiveOptions): Promise<ReleaseInfo> {
  const cacheDir = join(opts.store.kilnDir, "debian", "release");
  const cacheFile = join(cacheDir, `${sha256Hex(`${s.mirror} ${s.suite}`).slice(0, 32)}`);
  const base = `${s.mirror}/dists/${s.suite}`;
  let data: Buffer | undefined;
  let sig: Buffer | undefined;
  let what = `${base}/InRelease`;
  if (opts.offline) {
    const cached = await readFile(`${cacheFile}.json`, "utf8").then((t) => JSON.parse(t) as { data: string; sig?: string }, () => undefined);
    if (!cached) {
      throw new KilnError("E_DEBIAN_INDEX", `the index of ${s.suite} from ${s.mirror} is not cached and --offline forbids downloading it`, { hint: "run kiln lock once without --offline" });
    }
    data = Buffer.from(cached.data, "base64");
    sig = cached.sig ? Buffer.from(cached.sig, "base64") : undefined;
  } else {
    opts.log?.(`fetching ${what}`);
    data = await download(what);
    if (!data) {
      what = `${base}/Release`;
      data = await download(what);
      if (!data) {
        throw new KilnError("E_DEBIAN_INDEX", `${s.mirror} has no suite '${s.suite}' (no dists/${s.suite}/InRelease or Release)`, {
          hint: `check debian.suite and debian.mirror (suite from ${s.from.suite}, mirror from ${s.from.mirror})`,
        });
      }
      sig = await download(`${what}.gpg`);
    }
  }
  const gpgv = await whichTool("gpgv");
  let text: string;
  let verified: string;
  if (s.keyring && gpgv) {
    if (!sig && !data.toString("latin1", 0, 40).startsWith("-----BEGIN PGP SIGNED")) {
      throw new KilnError("E_DEBIAN_INDEX", `${what} is not signed (no Release.gpg), so it cannot be checked against ${s.keyring}`, { hint: "use a mirror that publishes InRelease" });
    }
    text = await gpgvVerify(opts.store, s.keyring, { data, sig }, what);
    verified = `gpgv (${s.keyring})`;
  } else {
    text = clearsignedText(data.toString("utf8"));
    verified = !gpgv ? "not checked: gpgv is not installed" : "not checked: no keyring (set debian.keyring)";
    opts.log?.(`warning: the signature of ${what} is ${verified}`);
  }
  const st: Stanza = parseStanzas(text)[0] ?? {};
  if (st.Suite !== s.suite && st.Codename !== s.suite) {
    throw new KilnError("E_DEBIAN_INDEX", `${what} is for suite ${st.Suite ?? "?"} (${st.Codename ?? "?"}), not ${s.suite}`, { hint: "the mirror serves another release under this name; check debian.mirror" });
  }
  if (st["Valid-Until"]) {
    const until = Date.parse(st["Valid-Until"]);
    if (Number.isFinite(until) && until < Date.now()) {
      throw new KilnError("E_DEBIAN_INDEX", `${what} expired on ${st["Valid-Until"]} (Valid-Until)`, { hint: "the mirror is stale or replays an old index; use another mirror" });
    }
  }
  const files = new Map<string, { sha256: string; size: number }>();
  for (const line of (st.SHA256 ?? "").split("\n")) {
    const m = /^\s*([0-9a-f]{64})\s+(\d+)\s+(\S+)\s*$/.exec(line);
    if (m) files.set(m[3]!, { sha256: m[1]!, size: Number(m[2]) });
  }
  if (!opts.offline) {
    await writeFileAtomic(`${cacheFile}.json`, JSON.stringify({ data: data.toString("base64"), sig: sig?.toString("base64") }), { sync: false });
  }
  return {
    suite: st.Suite ?? s.suite,
    codename: st.Codename ?? s.suite,
    architectures: (st.Architectures ?? "").split(/\s+/).filter(Boolean),
    components: (st.Components ?? "").split(/\s+/).filter(Boolean),
    acquireByHash: st["Acquire-By-Hash"] === "yes",
    files,
    verified,
  };
}

async function xzDecompress(buf: Buffer): Promise<Buffer> {
  const xz = await whichTool("xz");
  if (!xz) throw new KilnError("E_TOOL_MISSING", "the host tool 'xz' is not installed; it reads Packages.xz", { hint: "install it with: sudo apt-get install -y xz-utils" });
  return new Promise((resolve, reject) => {
    const child = spawn(xz, ["-dc"], { stdio: ["pipe", "pipe", "pipe"], signal: runSignal });
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new KilnError("E_TOOL_FAILED", `xz failed with exit code ${code}`, { details: [err.trim()] }))));
    child.stdin.end(buf);
  });
}

/**
 * The packages of one component and architecture: the Packages file named
 * in Release, downloaded (by-hash when the archive offers it), checked
 * against Release's sha256 and size, and parsed. The parsed form is cached
 * in the store under that sha256, so a repeated kiln lock reads no network
 * beyond InRelease and parses nothing.
 */
export async function loadIndex(s: DebianSettings, rel: ReleaseInfo, component: string, arch: string, opts: ArchiveOptions): Promise<Stanza[]> {
  const dir = `${component}/binary-${arch}`;
  // The smallest download the host can read first; a mirror that lacks a listed file (partial mirrors do) falls back to the next.
  const names = (await whichTool("xz")) ? ["Packages.xz", "Packages.gz", "Packages"] : ["Packages.gz", "Packages.xz", "Packages"];
  const choices = names.map((n) => ({ name: n, entry: rel.files.get(`${dir}/${n}`) })).filter((c): c is { name: string; entry: { sha256: string; size: number } } => !!c.entry);
  if (!choices.length) {
    const archs = rel.architectures.filter((a) => a !== "all");
    if (archs.length && !archs.includes(arch)) {
      throw new KilnError("E_DEBIAN_INDEX", `${s.suite} has no ${arch} packages (its architectures: ${archs.join(", ")})`, {
        hint: arch === "riscv64" ? "Debian has riscv64 from trixie (13) on; bookworm has it only on debian-ports" : `leave ${arch} out of this package's arch list`,
      });
    }
    throw new KilnError("E_DEBIAN_INDEX", `${s.suite} has no component '${component}' for ${arch} (components: ${rel.components.join(", ")})`, { hint: "check debian.components in kiln.yml" });
  }
  // The parsed form of any of them (the same index) is as good.
  for (const c of choices) {
    const hit = await readFile(join(opts.store.kilnDir, "debian", "index", `${c.entry.sha256}.json`), "utf8").catch(() => undefined);
    if (hit) return JSON.parse(hit) as Stanza[];
  }
  const first = `${s.mirror}/dists/${s.suite}/${dir}/${choices[0]!.name}`;
  if (opts.offline) throw new KilnError("E_DEBIAN_INDEX", `${first} is not cached and --offline forbids downloading it`, { hint: "run kiln lock once without --offline" });
  for (const { name, entry } of choices) {
    const { sha256, size } = entry;
    const where = `${s.mirror}/dists/${s.suite}/${dir}/${name}`;
    const url = rel.acquireByHash ? `${s.mirror}/dists/${s.suite}/${dir}/by-hash/SHA256/${sha256}` : where;
    opts.log?.(`fetching ${where}`);
    let buf = await download(url);
    if (!buf && url !== where) buf = await download(where);
    if (!buf) continue;
    const got = sha256Hex(buf);
    if (got !== sha256 || buf.length !== size) {
      throw new KilnError("E_DEBIAN_INDEX", `${where} has sha256 ${got} (${buf.length} bytes), but Release says ${sha256} (${size} bytes)`, {
        hint: "the mirror may be in the middle of an update (try again) or serve tampered files",
      });
    }
    const raw = name.endsWith(".gz") ? await promisify(gunzip)(buf) : name.endsWith(".xz") ? await xzDecompress(buf) : buf;
    const stanzas = parseStanzas(raw.toString("utf8"), INDEX_FIELDS);
    await writeFileAtomic(join(opts.store.kilnDir, "debian", "index", `${sha256}.json`), JSON.stringify(stanzas), { sync: false });
    return stanzas;
  }
  throw new KilnError("E_DEBIAN_INDEX", `${s.mirror}/dists/${s.suite}/${dir}/ has none of ${choices.map((c) => c.name).join(", ")}, though Release lists them`, {
    hint: "the mirror may be in the middle of an update; try again",
  });
}

/** Everything the resolver needs for one architecture: all components' indexes together. */
export async function loadUniverse(s: DebianSettings, rel: ReleaseInfo, arch: string, opts: ArchiveOptions): Promise<Universe> {
  let stanzas: Stanza[] = [];
  for (const c of s.components) stanzas = stanzas.concat(await loadIndex(s, rel, c, arch, opts));
  return Universe.fromStanzas(arch, stanzas, `${s.suite} ${s.components.join("+")} (${arch})`);
}
