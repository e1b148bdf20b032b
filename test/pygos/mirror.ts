import { execa } from "execa";
import { createReadStream } from "node:fs";
import { cp, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll } from "vitest";
import { REPO } from "../helpers/kiln.js";

export const FIXTURE = join(REPO, "test", "fixtures", "pygos");

/** The machine's Debian mirror and suite, from its apt sources (deb822 or one-line). */
async function machineMirror(): Promise<{ uri: string; suite: string }> {
  const texts: string[] = [];
  for (const f of ["/etc/apt/sources.list", ...(await readdir("/etc/apt/sources.list.d").catch(() => [] as string[])).map((n) => `/etc/apt/sources.list.d/${n}`)]) {
    if (/\.(list|sources)$/.test(f)) texts.push(await readFile(f, "utf8").catch(() => ""));
  }
  for (const t of texts) {
    const deb822 = /^URIs:\s*(\S+)[\s\S]*?^Suites:\s*(\S+)/m.exec(t);
    if (deb822 && !deb822[1]!.includes("security")) return { uri: deb822[1]!, suite: deb822[2]! };
    const line = /^deb(?:-src)?\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/m.exec(t);
    if (line && !line[1]!.includes("security")) return { uri: line[1]!, suite: line[2]! };
  }
  return { uri: "http://deb.debian.org/debian", suite: "bookworm" };
}

/** Debian's orig tarball of a source package, fetched with a private apt state (the machine's apt is left alone). */
export async function debianOrig(pkg: string, dir: string): Promise<string> {
  const { uri, suite } = await machineMirror();
  const state = join(dir, "apt");
  await mkdir(join(state, "lists", "partial"), { recursive: true });
  await mkdir(join(state, "cache", "archives", "partial"), { recursive: true });
  await writeFile(join(state, "sources.list"), `deb-src ${uri} ${suite} main\n`);
  const o = ["-o", `Dir::Etc::sourcelist=${join(state, "sources.list")}`, "-o", "Dir::Etc::sourceparts=-", "-o", `Dir::State::Lists=${join(state, "lists")}`, "-o", `Dir::Cache=${join(state, "cache")}`, "-o", "APT::Sandbox::User=root", "-qq"];
  await execa("apt-get", [...o, "update"]);
  await execa("apt-get", [...o, "source", "--download-only", pkg], { cwd: dir });
  const orig = (await readdir(dir)).find((n) => n.startsWith(`${pkg}_`) && n.includes(".orig.tar."));
  if (!orig) throw new Error(`apt-get source ${pkg} gave no orig tarball`);
  return join(dir, orig);
}

/** Serve a folder on 127.0.0.1 with plain HTML listings (what check_update scripts scrape); closed after the file. */
export async function serveDir(root: string, extraListing: Record<string, string[]> = {}): Promise<string> {
  const server = createServer((req, res) => {
    void (async () => {
      const rel = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname).replace(/^\/+|\/+$/g, "");
      const p = join(root, rel);
      const st = await stat(p).catch(() => undefined);
      if (!st || rel.split("/").includes("..")) {
        res.writeHead(404).end();
      } else if (st.isDirectory()) {
        const names = [...(await readdir(p)), ...(extraListing[rel] ?? [])];
        res.writeHead(200, { "content-type": "text/html" }).end(names.map((n) => `<a href="${n}">${n}</a>`).join("\n"));
      } else {
        res.writeHead(200, { "content-length": st.size });
        createReadStream(p).pipe(res);
      }
    })();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export async function sha256(file: string): Promise<string> {
  const { createHash } = await import("node:crypto");
  return createHash("sha256").update(await readFile(file)).digest("hex");
}

/** A reproducible tarball of a folder. */
export async function makeTarball(parent: string, name: string, out: string): Promise<void> {
  await execa("tar", ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-czf", out, name], { cwd: parent, env: { GZIP: "-n" } });
}

/** The fixture tree copied into `dest`, with the mirror's URL and the tarballs' sums filled in. */
export async function fixtureTree(dest: string, vars: Record<string, string>): Promise<string> {
  await cp(FIXTURE, dest, { recursive: true });
  for (const name of await readdir(join(dest, "pkg"))) {
    const f = join(dest, "pkg", name, "build");
    let text = await readFile(f, "utf8");
    for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`@${k}@`, v);
    await writeFile(f, text);
  }
  return dest;
}
