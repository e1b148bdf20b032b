import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderErrorsDoc, renderSchemas } from "../../src/config/generated.js";
import { CODES } from "../../src/core/codes.js";
import { REPO, kiln } from "../helpers/kiln.js";

const COMMANDS = [[], ["build"], ["plan"], ["explain"], ["validate"], ["pkg"], ["pkg", "build"], ["pkg", "list"], ["pkg", "show-tag"], ["store"], ["store", "ls"], ["store", "gc"], ["store", "fsck"], ["doctor"]];

describe("the command line", () => {
  it.each(COMMANDS.map((c) => [c.join(" ") || "(kiln)", c]))("%s --help works", async (_name, words) => {
    const r = await kiln([...(words as string[]), "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: kiln/);
  });

  it("refuses an unknown command or option with E_USAGE and exit 2", async () => {
    const r = await kiln(["biuld"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error[E_USAGE]");
    expect(r.stderr).toContain("(Did you mean build?)");
    const o = await kiln(["build", "--frobnicate"]);
    expect(o.code).toBe(2);
    expect(o.stderr).toContain("unknown option '--frobnicate'");
    const j = await kiln(["-j", "0", "store", "ls"]);
    expect(j.code).toBe(0); // store ls takes no jobs; -j is checked where it is used
  });

  it("doctor lists the tools with their install command", async () => {
    const r = await kiln(["doctor"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/bwrap\s+ok \(bubblewrap/);
    expect(r.stdout).toContain("native module: ok (composing writes file bytes on a copy thread, large files in the kernel with copy_file_range)");
    const off = await kiln(["doctor"], { env: { KILN_NATIVE: "0" } });
    expect(off.stdout).toContain("native module: off (KILN_NATIVE=0)");
  });
});

describe("generated files are in step with their sources", () => {
  it("docs/errors.md lists every error code", async () => {
    const doc = await readFile(join(REPO, "docs/errors.md"), "utf8");
    expect(doc).toBe(renderErrorsDoc());
    for (const code of Object.keys(CODES)) expect(doc).toContain(`\`${code}\``);
  });

  it("schema/*.schema.json match the schemas kiln validates with", async () => {
    for (const [name, text] of Object.entries(renderSchemas())) {
      expect(await readFile(join(REPO, "schema", name), "utf8"), `${name} is stale: run npm run schema`).toBe(text);
    }
  });
});
