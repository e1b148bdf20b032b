import { access, readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { built, jsonLines, KILN_YML, kiln, tempDir, writeProject } from "../helpers/kiln.js";
import { layerOf, readTar, refs } from "../helpers/layers.js";

describe("files and script packages", () => {
  it("puts recipe ownership and modes into the tar headers, never the host's", async () => {
    const dir = await writeProject({
      "kiln.yml": KILN_YML,
      "pkg/f/build.yml": [
        "kind: files",
        "files:",
        "  - path: /etc/secret",
        "    contents: \"s3cret\\n\"",
        "    mode: \"0600\"",
        "    uid: 1000",
        "    gid: 100",
        "  - path: /opt/tree",
        "    source: tree",
        "  - path: /bin/sh",
        "    symlink: busybox",
        "  - path: /var/empty",
        "    directory: true",
        "    mode: 0700",
      ].join("\n"),
      "pkg/f/tree/run.sh": "#!/bin/sh\n",
      "pkg/f/tree/data/x.txt": "x\n",
      "pkg/s/build.yml": "kind: script\nownership:\n  - path: /home/u\n    uid: 1000\n    gid: 1000\n    mode: \"0750\"\nscript: |\n  mkdir -p \"$DESTDIR/home/u\" \"$DESTDIR/usr/bin\"\n  echo hi > \"$DESTDIR/usr/bin/hi\"\n  chmod 0700 \"$DESTDIR/usr/bin/hi\"\n  ln \"$DESTDIR/usr/bin/hi\" \"$DESTDIR/usr/bin/hi2\"\n",
    });
    const { chmod } = await import("node:fs/promises");
    await chmod(join(dir, "pkg/f/tree/run.sh"), 0o775);
    await chmod(join(dir, "pkg/f/tree/data/x.txt"), 0o666);
    const store = await tempDir();
    const r = await kiln(["-C", dir, "build"], { store });
    expect(r.code, r.stderr).toBe(0);
    const f = await readTar(await layerOf(store, "f"));
    const by = Object.fromEntries(f.map((e) => [e.name, e]));
    expect(f.map((e) => e.name)).toEqual(["bin/", "bin/sh", "etc/", "etc/secret", "opt/", "opt/tree/", "opt/tree/data/", "opt/tree/data/x.txt", "opt/tree/run.sh", "var/", "var/empty/"]);
    expect(by["etc/secret"]).toMatchObject({ mode: 0o600, uid: 1000, gid: 100, body: "s3cret\n", mtime: 1700000000 });
    expect(by["opt/tree/run.sh"]).toMatchObject({ mode: 0o755, uid: 0, gid: 0 });
    expect(by["opt/tree/data/x.txt"]).toMatchObject({ mode: 0o644, uid: 0 });
    expect(by["bin/sh"]).toMatchObject({ type: "symlink", linkname: "busybox" });
    expect(by["var/empty/"]).toMatchObject({ type: "directory", mode: 0o700 });
    const s = await readTar(await layerOf(store, "s"));
    const sb = Object.fromEntries(s.map((e) => [e.name, e]));
    expect(sb["home/u/"]).toMatchObject({ uid: 1000, gid: 1000, mode: 0o750 });
    expect(sb["usr/bin/hi"]).toMatchObject({ type: "file", mode: 0o755, uid: 0, body: "hi\n" });
    expect(sb["usr/bin/hi2"]).toMatchObject({ type: "link", linkname: "usr/bin/hi" });
  });

  it("keeps building independent targets when one fails, skips its dependents, and reports all failures", async () => {
    const dir = await writeProject({
      "kiln.yml": KILN_YML,
      "pkg/bad/build.yml": "kind: script\nscript: |\n  echo compiling\n  echo 'cc: error: foo.c: No such file' >&2\n  exit 3\n",
      "pkg/bad2/build.yml": "kind: script\nscript: |\n  false\n",
      "pkg/after/build.yml": "kind: files\ndepends: [bad]\nfiles:\n  - path: /a\n    contents: a\n",
      "pkg/good/build.yml": "kind: script\nscript: |\n  echo ok > \"$DESTDIR/ok\"\n",
    });
    const store = await tempDir();
    const r = await kiln(["-C", dir, "--json", "build"], { store });
    expect(r.code).toBe(1);
    expect(built(r.stdout)).toEqual(["pkg/good"]);
    const events = jsonLines(r.stdout);
    expect(events.filter((e) => e.type === "fail").map((e) => [e.target, e.code]).sort()).toEqual([["pkg/bad", "E_SCRIPT_FAILED"], ["pkg/bad2", "E_SCRIPT_FAILED"]]);
    expect(events.find((e) => e.type === "skip")).toMatchObject({ target: "pkg/after" });
    expect(r.stderr).toContain("error[E_BUILD_FAILED]: 2 of 4 targets failed");
    expect(r.stderr).toMatch(/pkg\/bad: E_SCRIPT_FAILED the build script of bad exited with code 3 {2}\(pkg\/bad\/build\.yml:2:9\)/);
    expect(r.stderr).toContain("cc: error: foo.c: No such file");
    const logPath = join(dir, "out/amd64/log/bad.log.gz");
    expect(r.stderr).toContain(logPath);
    const { gunzipSync } = await import("node:zlib");
    const { readFile } = await import("node:fs/promises");
    expect(gunzipSync(await readFile(logPath)).toString()).toContain("compiling");
    expect(await refs(store)).toEqual([expect.stringMatching(/^kiln\/good:/)]);
    expect(await readdir(join(store, "kiln/tmp"))).toEqual([]);
  });

  it("refuses a script that writes outside $DESTDIR, and runs it without network", async () => {
    const dir = await writeProject({
      "kiln.yml": KILN_YML,
      "pkg/escape/build.yml": "kind: script\nscript: |\n  echo x > /usr/local/kiln-escape-test\n",
      "pkg/net/build.yml": "kind: script\nscript: |\n  tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > \"$DESTDIR/ifaces\"\n",
    });
    const store = await tempDir();
    const r = await kiln(["-C", dir, "build", "escape"], { store });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/pkg\/escape: E_WRITE_OUTSIDE_DESTDIR the build script of escape tried to write outside \$DESTDIR {2}\(pkg\/escape\/build\.yml:2:9\)/);
    await expect(access("/usr/local/kiln-escape-test")).rejects.toThrow();
    expect(await refs(store)).toEqual([]);
    const n = await kiln(["-C", dir, "build", "net"], { store });
    expect(n.code, n.stderr).toBe(0);
    const ifaces = (await readTar(await layerOf(store, "net"))).find((e) => e.name === "ifaces")!;
    // Only loopback exists inside the sandbox's network namespace.
    expect(ifaces.body.trim()).toBe("lo");
  });
});
