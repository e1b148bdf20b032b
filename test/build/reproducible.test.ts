import { execa } from "execa";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, kiln, tempDir, writeProject } from "../helpers/kiln.js";

const FILES = {
  "kiln.yml": "name: r\narchs: [amd64]\nsourceDateEpoch: 1700000000\n",
  "pkg/a/build.yml": "kind: files\nfiles:\n  - path: /etc/a\n    source: a\n  - path: /srv\n    source: tree\n",
  "pkg/a/a": "a\n",
  "pkg/a/tree/one": "1\n",
  "pkg/a/tree/sub/two": "2\n",
  "pkg/b/build.yml": "kind: script\ndepends: [a]\nscript: |\n  mkdir -p \"$DESTDIR/x/y\"\n  date -u -d @\"$SOURCE_DATE_EPOCH\" > \"$DESTDIR/x/y/when\"\n  touch \"$DESTDIR/x/file\"\n  cat \"$SYSROOT/etc/a\" > \"$DESTDIR/x/a\"\n",
};

describe("reproducible package images", () => {
  it("gives the same index, manifests and layers from two folders, umasks, time zones and stores", async () => {
    const digests: string[] = [];
    for (const [umask, tz] of [["022", "UTC"], ["077", "Asia/Kolkata"]] as const) {
      const dir = await writeProject(FILES);
      const store = await tempDir();
      // umask applies to the files the checkout would create too: re-create them under it.
      const r = await execa("sh", ["-c", `umask ${umask}; exec node ${BIN} -C ${dir} build`], { reject: false, env: { KILN_STORE: store, TZ: tz, NO_COLOR: "1" } });
      expect(r.exitCode, r.stderr).toBe(0);
      const idx = JSON.parse(await readFile(join(store, "index.json"), "utf8")) as { manifests: { digest: string; annotations: Record<string, string> }[] };
      digests.push(idx.manifests.map((m) => `${m.annotations["org.opencontainers.image.ref.name"]}@${m.digest}`).join("\n"));
    }
    expect(digests[0]).toMatch(/kiln\/a:[0-9a-f]{40}@sha256:[0-9a-f]{64}\nkiln\/b:[0-9a-f]{40}@sha256:/);
    expect(digests[1]).toBe(digests[0]);
  });

  it("changes the key with the source date epoch", async () => {
    const dir = await writeProject(FILES);
    const a = await kiln(["-C", dir, "pkg", "show-tag", "a"], { store: await tempDir() });
    await writeProject({ "kiln.yml": "name: r\narchs: [amd64]\nsourceDateEpoch: 1700000001\n" }, dir);
    const b = await kiln(["-C", dir, "pkg", "show-tag", "a"], { store: await tempDir() });
    expect(a.stdout).toMatch(/^kiln\/a:/);
    expect(b.stdout).not.toBe(a.stdout);
  });
});
