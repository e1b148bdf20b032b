import { describe, expect, it } from "vitest";
import { KILN_YML, kiln, tempDir, writeProject } from "../helpers/kiln.js";

describe("config validation", () => {
  it("reports every problem in every file at once, each with code, file:line:col and a suggestion", async () => {
    const dir = await writeProject({
      "kiln.yml": "name: t\narchs: [amd64]\nsourceDateEpoc: 1\n",
      "pkg/a/build.yml": "kind: files\nfiels:\n  - path: /x\n    contents: a\n",
      "pkg/b/build.yml": "kind: script\nscript: [unclosed\n",
      "pkg/c/build.yml": "kind: files\nfiles:\n  - path: /x\n    contents: a\n    mdoe: \"0644\"\n",
      "pkg/d/build.yml": "kind: sript\n",
    });
    const store = await tempDir();
    const r = await kiln(["-C", dir, "validate"], { store });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error[E_UNKNOWN_KEY]: unknown key 'sourceDateEpoc'");
    expect(r.stderr).toContain("--> kiln.yml:3:1");
    expect(r.stderr).toContain("did you mean 'sourceDateEpoch'?");
    expect(r.stderr).toMatch(/unknown key 'fiels'[\s\S]*?--> pkg\/a\/build\.yml:2:1[\s\S]*?did you mean 'files'\?/);
    expect(r.stderr).toMatch(/error\[E_MISSING_FIELD\]: missing required field 'files'[\s\S]*?--> pkg\/a\/build\.yml:1:1/);
    expect(r.stderr).toMatch(/error\[E_YAML_SYNTAX\][\s\S]*?--> pkg\/b\/build\.yml:\d+:\d+/);
    expect(r.stderr).toMatch(/unknown key 'mdoe'[\s\S]*?--> pkg\/c\/build\.yml:5:5[\s\S]*?did you mean 'mode'\?/);
    expect(r.stderr).toMatch(/error\[E_BAD_VALUE\]: kind is 'sript', expected one of: files, script[\s\S]*?--> pkg\/d\/build\.yml:1:7[\s\S]*?did you mean 'script'\?/);
    expect(r.stderr).toContain("6 problems");
  });

  it("checks types, modes, paths and pinned downloads", async () => {
    const dir = await writeProject({
      "kiln.yml": KILN_YML,
      "pkg/a/build.yml": [
        "kind: files",
        "files:",
        "  - path: etc/relative",
        "    contents: x",
        "  - path: /ok",
        "    contents: x",
        "    mode: \"0999\"",
        "  - path: /bad/../up",
        "    source: ../../../outside",
        "  - path: /none",
        "    source: missing.txt",
        "  - path: /two",
        "    contents: x",
        "    directory: true",
      ].join("\n"),
      "pkg/b/build.yml": "kind: script\ndepends: notalist\nsources:\n  - url: https://example.org/x.tar.gz\nscript: make\n",
    });
    const r = await kiln(["-C", dir, "validate"], { store: await tempDir() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error\[E_BAD_VALUE\]: files\[0\]\.path[\s\S]*?pkg\/a\/build\.yml:3:11/);
    expect(r.stderr).toMatch(/error\[E_BAD_VALUE\][^\n]*mode[\s\S]*?pkg\/a\/build\.yml:7:11/);
    expect(r.stderr).toMatch(/error\[E_PATH_ESCAPE\]: in-image path '\/bad\/\.\.\/up'[\s\S]*?pkg\/a\/build\.yml:8:11/);
    expect(r.stderr).toMatch(/error\[E_PATH_ESCAPE\]: '\.\.\/\.\.\/\.\.\/outside' is outside the project[\s\S]*?pkg\/a\/build\.yml:9:13/);
    expect(r.stderr).toMatch(/error\[E_SOURCE_MISSING\][^\n]*missing\.txt[\s\S]*?pkg\/a\/build\.yml:11:13/);
    expect(r.stderr).toMatch(/files\[4\] has contents and directory; give exactly one[\s\S]*?pkg\/a\/build\.yml:12:5/);
    expect(r.stderr).toMatch(/error\[E_WRONG_TYPE\]: depends: expected array, got string "notalist"[\s\S]*?pkg\/b\/build\.yml:2:10/);
    expect(r.stderr).toMatch(/error\[E_MISSING_FIELD\]: sources\[0\] has a url but no sha256[\s\S]*?pkg\/b\/build\.yml:4:5/);
  });

  it("validates single files given on the command line", async () => {
    const dir = await writeProject({ "x/build.yml": "kind: files\nfiles:\n  - path: /a\n    contents: b\n", "y/kiln.yml": "name: ok\nbogus: 1\n" });
    const good = await kiln(["validate", `${dir}/x/build.yml`]);
    expect(good.code).toBe(0);
    expect(good.stdout).toContain("1 file OK");
    const bad = await kiln(["validate", `${dir}/y/kiln.yml`]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown key 'bogus'");
  });

  it("takes what linuxkit's schema takes in an image yml, and catches typos it would not", async () => {
    const good = [
      "kernel:",
      "  cmdline: console=ttyS0", // no image: no kernel, as in linuxkit
      "services:",
      "  - name: s",
      "    image: x",
      "    devices:",
      "      - {path: all, type: b}",
      "    mounts:",
      "      - {type: bind, source: /a, destination: /a, uidMappings: [{hostID: 0, containerID: 0, size: 1}]}",
      "    resources:",
      "      blockio:",
      "        weight: 10",
      "        throttleReadBpsDevice: [{major: 8, minor: 0, rate: 600}]",
      "",
    ].join("\n");
    const dir = await writeProject({ "good.yml": good, "bad.yml": good.replace("        weight: 10", "        wieght: 10") });
    const ok = await kiln(["validate", `${dir}/good.yml`]);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await kiln(["validate", `${dir}/bad.yml`]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown key 'wieght'[\s\S]*?bad\.yml:12:9[\s\S]*?did you mean 'weight'\?/);
  });

  it("says where to run when there is no project", async () => {
    const dir = await tempDir();
    const r = await kiln(["-C", dir, "build"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error[E_PROJECT_NOT_FOUND]");
  });
});

describe("the validated-config cache", () => {
  it("never hides a problem introduced after a good build", async () => {
    const dir = await writeProject({ "kiln.yml": KILN_YML, "pkg/a/build.yml": "kind: files\nfiles:\n  - path: /a\n    contents: a\n" });
    const store = await tempDir();
    expect((await kiln(["-C", dir, "build"], { store })).code).toBe(0);
    await writeProject({ "pkg/a/build.yml": "kind: files\nfiles:\n  - path: /a\n    contents: a\n    onwer: 1\n" }, dir);
    const r = await kiln(["-C", dir, "build"], { store });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown key 'onwer'[\s\S]*?pkg\/a\/build\.yml:5:5/);
  });
});
