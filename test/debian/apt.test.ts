import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { kiln, tempDir, writeProject } from "../helpers/kiln.js";

/*
 * kiln's resolver against apt's: the same request in an empty root, from the
 * same index (bookworm main amd64 from deb.debian.org, copied once into a
 * file:// mirror so both read identical bytes), must give the same package
 * set. apt runs with a private, empty dpkg status, private lists and cache,
 * no apt.conf.d of the host, Install-Recommends off, amd64 only; it only
 * simulates (`apt-get install -s`).
 */

const UPSTREAM = "http://deb.debian.org/debian";
const KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";
const REQUESTS = ["busybox-static", "grub-efi-amd64-bin", "linux-image-amd64"];

let mirror = "";
let project = "";
let aptConf = "";

/** Copy InRelease and the amd64 Packages.xz it names (checked against its sha256) into a local mirror. */
async function localMirror(): Promise<string> {
  const dir = await tempDir("kiln-apt-mirror");
  const get = async (url: string) => {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  };
  const inRelease = await get(`${UPSTREAM}/dists/bookworm/InRelease`);
  const m = new RegExp(`^ ([0-9a-f]{64})\\s+\\d+ main/binary-amd64/Packages\\.xz$`, "m").exec(inRelease.toString("utf8"));
  if (!m) throw new Error("InRelease lists no main/binary-amd64/Packages.xz");
  const packages = await get(`${UPSTREAM}/dists/bookworm/main/binary-amd64/by-hash/SHA256/${m[1]}`);
  expect(createHash("sha256").update(packages).digest("hex")).toBe(m[1]);
  const bin = join(dir, "dists", "bookworm", "main", "binary-amd64");
  await mkdir(join(bin, "by-hash", "SHA256"), { recursive: true });
  await writeFile(join(dir, "dists", "bookworm", "InRelease"), inRelease);
  await writeFile(join(bin, "Packages.xz"), packages);
  await writeFile(join(bin, "by-hash", "SHA256", m[1]!), packages);
  return dir;
}

/** A private apt: its own root for state, lists, cache and configuration; an empty dpkg status. */
async function privateApt(mirrorDir: string): Promise<string> {
  const root = await tempDir("kiln-apt-root");
  for (const d of ["etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/sources.list.d", "etc/apt/trusted.gpg.d", "var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/lib/dpkg", "var/log/apt"]) await mkdir(join(root, d), { recursive: true });
  await writeFile(join(root, "var/lib/dpkg/status"), "");
  const trust = existsSync(KEYRING) ? `signed-by=${KEYRING}` : "trusted=yes";
  await writeFile(join(root, "etc/apt/sources.list"), `deb [${trust}] file://${mirrorDir} bookworm main\n`);
  const conf = join(root, "apt.conf");
  await writeFile(
    conf,
    [
      `Dir "${root}/";`,
      `Dir::State::status "${root}/var/lib/dpkg/status";`,
      'APT::Architecture "amd64";',
      'APT::Architectures "amd64";',
      'APT::Install-Recommends "false";',
      'APT::Install-Suggests "false";',
      'Acquire::Languages "none";',
      'Debug::NoLocking "true";',
      // As root, apt would hand downloads to the _apt user, who cannot read the temp folders.
      ...(process.getuid?.() === 0 ? ['APT::Sandbox::User "root";'] : []),
      "",
    ].join("\n"),
  );
  return conf;
}

const apt = (args: string[]) => execFileSync("apt-get", ["-q", ...args], { encoding: "utf8", env: { ...process.env, APT_CONFIG: aptConf, LC_ALL: "C" }, maxBuffer: 16 << 20, stdio: ["ignore", "pipe", "pipe"] });

/** What apt would install for one request, as "name=version", sorted. */
function aptChooses(pkg: string): string[] {
  return apt(["install", "-s", pkg])
    .split("\n")
    .flatMap((l) => {
      const m = /^Inst (\S+) \((\S+) /.exec(l);
      return m ? [`${m[1]}=${m[2]}`] : [];
    })
    .sort();
}

describe.runIf(existsSync("/usr/bin/apt-get"))("kiln resolves what apt-get install chooses in an empty root", () => {
  beforeAll(async () => {
    mirror = await localMirror();
    aptConf = await privateApt(mirror);
    apt(["update"]);
    project = await writeProject({
      "kiln.yml": `name: apt\narchs: [amd64]\nsourceDateEpoch: 1700000000\ndebian:\n  mirror: file://${mirror}\n  suite: bookworm\n`,
      ...Object.fromEntries(REQUESTS.map((p, i) => [`pkg/r${i}/build.yml`, `kind: debian\npackages: [${p}]\n`])),
    });
    const r = await kiln(["-C", project, "lock"], { store: await tempDir("kiln-apt-store") });
    if (r.code !== 0) throw new Error(r.stderr);
  });

  it.each(REQUESTS.map((p, i) => [p, i] as const))("%s", async (pkg, i) => {
    const lock = JSON.parse(await readFile(join(project, "kiln.lock"), "utf8")) as { recipes: Record<string, { archs: { amd64: { name: string; version: string }[] } }> };
    const ours = lock.recipes[`r${i}`]!.archs.amd64.map((d) => `${d.name}=${d.version}`).sort();
    const theirs = aptChooses(pkg);
    expect(theirs.length).toBeGreaterThan(0);
    expect(ours).toEqual(theirs);
    if (pkg === "linux-image-amd64") expect(ours.length).toBeGreaterThan(20);
  });
});
