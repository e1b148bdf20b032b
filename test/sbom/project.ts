import { execa } from "execa";
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BIN, kiln, tempDir, writeProject } from "../helpers/kiln.js";
import { type DebSpec, makeMirror, type Mirror } from "../debian/debs.js";

/**
 * A small project for the SBOM and provenance tests: a debian package from a
 * local signed mirror (two .debs, one a dependency, with a machine-readable
 * and a plain copyright file), a script package with a downloaded source
 * (file:// URL, sha256, version) built on it, and a files package; the
 * rootfs template names all three.
 */
export const DEBS: DebSpec[] = [
  {
    name: "libfoo1",
    version: "1:2.0-1+b1",
    fields: { Source: "foo (1:2.0-1)" },
    files: [
      { path: "/usr/lib/libfoo.so.1", body: "libfoo\n" },
      {
        path: "/usr/share/doc/libfoo1/copyright",
        body: "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: 2020 Foo\nLicense: GPL-2+\n\nFiles: src/x.c\nCopyright: 2021 X\nLicense: Expat\n\nFiles: src/y.c\nCopyright: 2021 Y\nLicense: GPL-2+ or Artistic\n",
      },
    ],
  },
  {
    name: "tool",
    version: "3.4-2",
    fields: { Depends: "libfoo1" },
    files: [
      { path: "/usr/bin/tool", body: "#!/bin/sh\necho tool\n", mode: 0o755 },
      { path: "/usr/share/doc/tool/copyright", body: "Tool is under the Apache License.\nSee /usr/share/common-licenses/Apache-2.0 for the text.\n" },
    ],
  },
];

export interface SbomProject {
  dir: string;
  mirror: Mirror;
  /** The script package's download: URL and sha256. */
  source: { url: string; sha256: string };
  files: Record<string, string>;
}

export async function sbomProject(extraYml = ""): Promise<SbomProject> {
  const mirror = await makeMirror(DEBS);
  const srcDir = await tempDir("kiln-src");
  const tarball = join(srcDir, "app-3.1.tar.gz");
  await writeFile(join(srcDir, "app.sh"), "#!/bin/sh\necho app 3.1\n");
  await execa("tar", ["-C", srcDir, "--sort=name", "--mtime=@1700000000", "--owner=0", "--group=0", "--numeric-owner", "-czf", tarball, "app.sh"], { env: { GZIP: "-n" } });
  const sha256 = createHash("sha256").update(await readFile(tarball)).digest("hex");
  const source = { url: `file://${tarball}`, sha256 };
  const files: Record<string, string> = {
    "kiln.yml": [
      "name: sbomtest",
      "archs: [amd64]",
      "sourceDateEpoch: 1700000000",
      "debian:",
      `  mirror: ${mirror.url}`,
      "  suite: kiln-test",
      ...(mirror.keyring ? [`  keyring: ${mirror.keyring}`] : []),
      extraYml,
      "",
    ].join("\n"),
    "pkg/base/build.yml": "kind: debian\ndescription: a tool and its library\npackages: [tool]\n",
    "pkg/app/build.yml": [
      "kind: script",
      "description: the app, from its release tarball",
      'version: "3.1"',
      "depends: [base]",
      "sources:",
      `  - url: ${source.url}`,
      `    sha256: ${source.sha256}`,
      "script: |",
      '  install -D -m 0755 app.sh "$DESTDIR/usr/bin/app"',
      '  cp "$SYSROOT/usr/bin/tool" "$DESTDIR/usr/bin/tool-copy"',
      "",
    ].join("\n"),
    "pkg/etc/build.yml": 'kind: files\nfiles:\n  - {path: /etc/motd, contents: "hello sbom\\n", mode: "0644"}\n',
    "images/rootfs.yml.in": 'init:\n  - BASE_TAG\n  - APP_TAG\n  - ETC_TAG\nfiles:\n  - path: etc/issue\n    contents: "sbomtest EVE_VERSION\\n"\n    mode: "0644"\n',
  };
  const dir = await writeProject(files);
  return { dir, mirror, source, files };
}

/** kiln lock, then kiln build TARGETS with this umask and time zone; returns the build's --json result data. */
export async function lockAndBuild(dir: string, store: string, targets: string[], opts: { umask?: string; tz?: string } = {}): Promise<{ outputs: { name: string; path: string; id: string }[] }> {
  const lock = await kiln(["-C", dir, "lock"], { store });
  if (lock.code !== 0) throw new Error(`kiln lock: ${lock.stderr}`);
  const r = await execa("sh", ["-c", `umask ${opts.umask ?? "022"}; exec node "$0" "$@"`, BIN, "-C", dir, "--json", "build", ...targets, "ROOTFS_VERSION=1.0"], {
    reject: false,
    env: { KILN_STORE: store, TZ: opts.tz ?? "UTC", NO_COLOR: "1", CI: "1" },
  });
  if (r.exitCode !== 0) throw new Error(`kiln build: ${r.stderr}`);
  const last = JSON.parse(r.stdout.trim().split("\n").pop()!) as { data: { outputs: { name: string; path: string; id: string }[] } };
  return last.data;
}

export const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
export const sha1 = (b: Buffer | string) => createHash("sha1").update(b).digest("hex");
