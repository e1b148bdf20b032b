import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { dirname, join, normalize } from "node:path";
import { gzipSync } from "node:zlib";
import tar from "tar-stream";
import { tempDir } from "../helpers/kiln.js";

/*
 * Small .debs and a Debian-style mirror made by the tests themselves: an ar
 * archive (debian-binary, control.tar.gz, data.tar.gz) per package, and
 * dists/SUITE/InRelease (signed with a throwaway gpg key when gpg is
 * installed) + main/binary-amd64/Packages.gz + pool/, served over HTTP on
 * 127.0.0.1.
 */

export interface DebFile {
  /** In-image path ("/usr/bin/x"), or the raw tar name when `raw` is set ("./../evil"). */
  path: string;
  type?: "file" | "directory" | "symlink" | "link";
  mode?: number;
  uid?: number;
  gid?: number;
  body?: string | Buffer;
  linkname?: string;
  raw?: boolean;
}

export interface DebSpec {
  name: string;
  version?: string;
  arch?: string;
  /** More control fields: Depends, Replaces, Source, ... */
  fields?: Record<string, string>;
  files: DebFile[];
}

function ar(members: [string, Buffer][]): Buffer {
  const parts: Buffer[] = [Buffer.from("!<arch>\n")];
  for (const [name, data] of members) {
    parts.push(Buffer.from(`${name.padEnd(16)}${"0".padEnd(12)}${"0".padEnd(6)}${"0".padEnd(6)}${"100644".padEnd(8)}${String(data.length).padEnd(10)}\`\n`, "latin1"), data);
    if (data.length % 2) parts.push(Buffer.from("\n"));
  }
  return Buffer.concat(parts);
}

type Hdr = Partial<tar.Header> & { name: string };

async function tarGz(entries: { header: Hdr; body?: Buffer }[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on("data", (c: unknown) => void chunks.push(c as Buffer));
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => pack.entry({ ...e.header, size: e.body?.length ?? 0 }, e.body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

export const controlText = (s: DebSpec) =>
  `${Object.entries({ Package: s.name, Version: s.version ?? "1.0", Architecture: s.arch ?? "amd64", Maintainer: "kiln tests <test@kiln.invalid>", ...s.fields, Description: `test package ${s.name}` })
    .map(([k, v]) => `${k}: ${v}`)
    .join("\n")}\n`;

/** A .deb as dpkg-deb builds one: parents listed before children, names "./path". */
export async function makeDeb(s: DebSpec): Promise<Buffer> {
  const mtime = new Date(1_700_000_000_000);
  const data: { header: Hdr; body?: Buffer }[] = [{ header: { name: "./", type: "directory", mode: 0o755, mtime } }];
  const dirs = new Set<string>();
  for (const f of s.files) {
    if (f.raw) continue;
    const parts = f.path.split("/").filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join("/");
      // Declared directories come in their own place; a parent declared as a symlink gets no directory entry.
      if (dirs.has(d) || s.files.some((x) => (x.type === "directory" || x.type === "symlink") && x.path.replace(/^\/+|\/+$/g, "") === d)) continue;
      dirs.add(d);
      data.push({ header: { name: `./${d}/`, type: "directory", mode: 0o755, mtime } });
    }
    if (f.type === "directory") dirs.add(parts.join("/"));
  }
  for (const f of s.files) {
    const name = f.raw ? f.path : `./${f.path.replace(/^\/+/, "")}${f.type === "directory" ? "/" : ""}`;
    const type = f.type ?? "file";
    const body = type === "file" ? Buffer.from(f.body ?? "") : undefined;
    data.push({ header: { name, type, mode: f.mode ?? (type === "directory" ? 0o755 : type === "symlink" ? 0o777 : 0o644), uid: f.uid ?? 0, gid: f.gid ?? 0, linkname: f.linkname, mtime }, body });
  }
  const control = await tarGz([
    { header: { name: "./", type: "directory", mode: 0o755, mtime } },
    { header: { name: "./control", mode: 0o644, mtime }, body: Buffer.from(controlText(s)) },
  ]);
  return ar([
    ["debian-binary", Buffer.from("2.0\n")],
    ["control.tar.gz", control],
    ["data.tar.gz", await tarGz(data)],
  ]);
}

export interface Mirror {
  dir: string;
  url: string;
  /** The keyring for kiln.yml's debian.keyring, or undefined when the InRelease is not signed (gpg missing and kiln would not verify). */
  keyring?: string;
  /** Pool path of each package, by name. */
  pool: Record<string, string>;
  close: () => Promise<void>;
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Would kiln check an InRelease here (gpgv and the default keyring present)? Then the test mirror must be signed. */
export const kilnVerifies = () => existsSync("/usr/bin/gpgv") && existsSync("/usr/share/keyrings/debian-archive-keyring.gpg");
export const canSign = () => existsSync("/usr/bin/gpg") || !kilnVerifies();

/** Sign `release` with a new throwaway key: the InRelease text and the public keyring. */
async function sign(release: string, dir: string): Promise<{ inRelease: string; keyring: string }> {
  const home = await tempDir("kiln-gpg");
  const gpg = (...args: string[]) => execFileSync("gpg", ["--batch", "--quiet", "--homedir", home, "--pinentry-mode", "loopback", "--passphrase", "", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    gpg("--quick-gen-key", "kiln test archive <test@kiln.invalid>", "ed25519", "sign", "never");
    await writeFile(join(home, "Release"), release);
    gpg("--clearsign", "--output", join(home, "InRelease"), join(home, "Release"));
    const keyring = join(dir, "test-archive.gpg");
    gpg("--export", "--output", keyring);
    return { inRelease: await readFile(join(home, "InRelease"), "utf8"), keyring };
  } finally {
    try {
      execFileSync("gpgconf", ["--homedir", home, "--kill", "gpg-agent"], { stdio: "ignore" });
    } catch {
      // no agent was started
    }
  }
}

/** Write a mirror with these packages under `dir` and serve it on 127.0.0.1. */
export async function makeMirror(debs: DebSpec[], suite = "kiln-test"): Promise<Mirror> {
  const dir = await tempDir("kiln-mirror");
  const stanzas: string[] = [];
  const pool: Record<string, string> = {};
  for (const s of debs) {
    const deb = await makeDeb(s);
    const file = `pool/main/${s.name[0]}/${s.name}/${s.name}_${(s.version ?? "1.0").replace(/^\d+:/, "")}_${s.arch ?? "amd64"}.deb`;
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await writeFile(join(dir, file), deb);
    pool[s.name] = file;
    stanzas.push(`${controlText(s)}Filename: ${file}\nSize: ${deb.length}\nSHA256: ${sha256(deb)}\n`);
  }
  const packages = gzipSync(Buffer.from(stanzas.join("\n")));
  const dists = join(dir, "dists", suite);
  await mkdir(join(dists, "main", "binary-amd64"), { recursive: true });
  await writeFile(join(dists, "main", "binary-amd64", "Packages.gz"), packages);
  const release = `Origin: kiln-test\nSuite: ${suite}\nCodename: ${suite}\nDate: Tue, 14 Nov 2023 22:13:20 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n ${sha256(packages)} ${packages.length} main/binary-amd64/Packages.gz\n`;
  let keyring: string | undefined;
  if (kilnVerifies()) {
    const signed = await sign(release, dir);
    keyring = signed.keyring;
    await writeFile(join(dists, "InRelease"), signed.inRelease);
  } else {
    await writeFile(join(dists, "InRelease"), release);
  }
  const { url, close } = await serve(dir);
  return { dir, url, keyring, pool, close };
}

/** Serve a folder's files over HTTP on 127.0.0.1 (404 for anything else). */
export async function serve(dir: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? "/").split("?")[0]!)).replace(/^(\.\.[/\\])+/, "");
    readFile(join(dir, path)).then(
      (b) => {
        res.writeHead(200, { "content-length": b.length });
        res.end(b);
      },
      () => {
        res.writeHead(404);
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
