import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { built, KILN_YML, kiln, tempDir, writeProject } from "../helpers/kiln.js";

/** base ← lib ← app, plus an unrelated leaf. */
const PROJECT = {
  "kiln.yml": KILN_YML,
  "pkg/base/build.yml": "kind: files\nfiles:\n  - path: /etc/base.conf\n    source: base.conf\n",
  "pkg/base/base.conf": "v=1\n",
  "pkg/lib/build.yml": "kind: script\ndepends: [base]\nscript: |\n  mkdir -p \"$DESTDIR/usr/lib\"\n  cat \"$SYSROOT/etc/base.conf\" > \"$DESTDIR/usr/lib/lib.txt\"\n",
  "pkg/app/build.yml": "kind: script\ndepends: [lib]\nsources:\n  - path: app.sh\nscript: |\n  install -D -m 0755 app.sh \"$DESTDIR/usr/bin/app\"\n  cp \"$SYSROOT/usr/lib/lib.txt\" \"$DESTDIR/usr/bin/app.lib\"\n",
  "pkg/app/app.sh": "#!/bin/sh\necho app\n",
  "pkg/leaf/build.yml": "kind: files\nfiles:\n  - path: /leaf\n    contents: leaf\n",
};

describe("content-addressed rebuilds", () => {
  it("rebuilds exactly the changed package and its dependents, explains why, then does nothing", async () => {
    const dir = await writeProject(PROJECT);
    const store = await tempDir();
    const first = await kiln(["-C", dir, "--json", "build"], { store });
    expect(first.code, first.stderr).toBe(0);
    expect(built(first.stdout)).toEqual(["pkg/app", "pkg/base", "pkg/leaf", "pkg/lib"]);

    const noop = await kiln(["-C", dir, "--json", "build"], { store });
    expect(noop.code).toBe(0);
    expect(built(noop.stdout)).toEqual([]);

    await writeFile(join(dir, "pkg/base/base.conf"), "v=2\n");
    const explain = await kiln(["-C", dir, "explain", "base"], { store });
    expect(explain.code, explain.stderr).toBe(0);
    expect(explain.stdout).toMatch(/file pkg\/base\/base\.conf changed: sha256:\w{12}… → sha256:\w{12}…/);
    const explainDep = await kiln(["-C", dir, "explain", "pkg/app"], { store });
    expect(explainDep.stdout).toMatch(/dependency pkg\/lib changed/);

    const plan = await kiln(["-C", dir, "--json", "plan"], { store });
    const rows = (JSON.parse(plan.stdout) as { targets: { target: string; action: string }[] }).targets;
    expect(rows.filter((r) => r.action === "build").map((r) => r.target).sort()).toEqual(["pkg/app", "pkg/base", "pkg/lib"]);

    const second = await kiln(["-C", dir, "--json", "build"], { store });
    expect(second.code, second.stderr).toBe(0);
    expect(built(second.stdout)).toEqual(["pkg/app", "pkg/base", "pkg/lib"]);
    expect(built((await kiln(["-C", dir, "--json", "build"], { store })).stdout)).toEqual([]);

    const after = await kiln(["-C", dir, "explain", "base"], { store });
    expect(after.stdout).toContain("no input changed since the last build");
  });

  it("changes a dependent's show-tag when only a dependency's recipe changes", async () => {
    const dir = await writeProject(PROJECT);
    const store = await tempDir();
    const before = await kiln(["-C", dir, "pkg", "show-tag", "pkg/app"], { store });
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout.trim()).toMatch(/^kiln\/app:[0-9a-f]{40}$/);
    await writeFile(join(dir, "pkg/base/build.yml"), "kind: files\nfiles:\n  - path: /etc/base.conf\n    source: base.conf\n    mode: \"0600\"\n");
    const after = await kiln(["-C", dir, "pkg", "show-tag", "pkg/app"], { store });
    expect(after.stdout.trim()).toMatch(/^kiln\/app:[0-9a-f]{40}$/);
    expect(after.stdout).not.toEqual(before.stdout);
    const leafBefore = await kiln(["-C", dir, "pkg", "show-tag", "--key", "leaf"], { store });
    expect(leafBefore.stdout.trim()).toMatch(/^[0-9a-f]{64}$/);
  });

  it("builds only the named target and its dependencies", async () => {
    const dir = await writeProject(PROJECT);
    const store = await tempDir();
    const r = await kiln(["-C", dir, "--json", "pkg", "build", "lib"], { store });
    expect(r.code, r.stderr).toBe(0);
    expect(built(r.stdout)).toEqual(["pkg/base", "pkg/lib"]);
    const unknown = await kiln(["-C", dir, "build", "pkg/lbi"], { store });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("error[E_UNKNOWN_TARGET]: no target 'pkg/lbi'");
    expect(unknown.stderr).toContain("did you mean 'pkg/lib'?");
  });

  it("reports a cycle with every edge's file and line, and a missing dependency with a suggestion", async () => {
    const cyc = await writeProject({
      "kiln.yml": KILN_YML,
      "pkg/a/build.yml": "kind: files\ndepends: [b]\nfiles:\n  - path: /a\n    contents: a\n",
      "pkg/b/build.yml": "kind: files\ndepends:\n  - c\nfiles:\n  - path: /b\n    contents: b\n",
      "pkg/c/build.yml": "kind: files\ndepends: [a]\nfiles:\n  - path: /c\n    contents: c\n",
    });
    const r = await kiln(["-C", cyc, "plan"], { store: await tempDir() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error[E_CYCLE]: dependency cycle: pkg/a → pkg/b → pkg/c → pkg/a");
    expect(r.stderr).toContain("pkg/a → pkg/b   (pkg/a/build.yml:2:11)");
    expect(r.stderr).toContain("pkg/b → pkg/c   (pkg/b/build.yml:3:5)");
    expect(r.stderr).toContain("pkg/c → pkg/a   (pkg/c/build.yml:2:11)");

    const miss = await writeProject({
      "kiln.yml": KILN_YML,
      "pkg/base/build.yml": "kind: files\nfiles:\n  - path: /a\n    contents: a\n",
      "pkg/app/build.yml": "kind: files\ndepends: [bsae]\nfiles:\n  - path: /b\n    contents: b\n",
    });
    const m = await kiln(["-C", miss, "build"], { store: await tempDir() });
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/error\[E_MISSING_DEP\]: package 'app' depends on 'bsae', which does not exist\n\s+--> pkg\/app\/build\.yml:2:11\n\s+hint: did you mean 'base'\?/);
  });
});

describe("per-architecture packages", () => {
  it("leaves out a package for an architecture it does not support, and refuses depending on it there", async () => {
    const dir = await writeProject({
      "kiln.yml": "name: t\narchs: [amd64, arm64]\n",
      "pkg/fw/build.yml": "kind: files\narch: [arm64]\nfiles:\n  - path: /fw\n    contents: fw\n",
      "pkg/any/build.yml": "kind: files\nfiles:\n  - path: /any\n    contents: any\n",
    });
    const store = await tempDir();
    const amd = await kiln(["-C", dir, "--json", "build"], { store });
    expect(built(amd.stdout)).toEqual(["pkg/any"]);
    const arm = await kiln(["-C", dir, "--json", "build", "ZARCH=arm64"], { store });
    expect(arm.code, arm.stderr).toBe(0);
    expect(built(arm.stdout)).toEqual(["pkg/any", "pkg/fw"]);
    await writeProject({ "pkg/any/build.yml": "kind: files\ndepends: [fw]\nfiles:\n  - path: /any\n    contents: any\n" }, dir);
    const bad = await kiln(["-C", dir, "validate"], { store });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/package 'any' depends on 'fw', which is not built for amd64[\s\S]*?pkg\/any\/build\.yml:2:11/);
  });
});

describe("the file digest cache", () => {
  it("sees a change that keeps the size and the mtime (the ctime moves)", async () => {
    const dir = await writeProject(PROJECT);
    const store = await tempDir();
    expect((await kiln(["-C", dir, "build"], { store })).code).toBe(0);
    const { stat, utimes } = await import("node:fs/promises");
    const f = join(dir, "pkg/base/base.conf");
    const before = await stat(f);
    await writeFile(f, "v=9\n");
    await utimes(f, before.atime, before.mtime);
    const r = await kiln(["-C", dir, "--json", "build"], { store });
    expect(built(r.stdout)).toEqual(["pkg/app", "pkg/base", "pkg/lib"]);
  });
});
