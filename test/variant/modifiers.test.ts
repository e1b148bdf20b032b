import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import type { Project } from "../../src/config/project.js";
import type { Variant } from "../../src/variant/knobs.js";
import { modifiersFor } from "../../src/variant/template.js";
import { tempDir } from "../helpers/kiln.js";

/** A project folder with these modifier files (a value starting with "->" is a symlink to it). */
async function withModifiers(files: Record<string, string>): Promise<Project> {
  const root = await tempDir("kiln-mods");
  for (const [p, v] of Object.entries(files)) {
    const at = join(root, "images/modifiers", p);
    await mkdir(join(at, ".."), { recursive: true });
    if (v.startsWith("->")) await symlink(v.slice(2), at);
    else await writeFile(at, v);
  }
  return { root, config: {} } as Project;
}

const variant = (hv: string, platform: string, flavor?: string): Variant => ({ arch: "amd64", hv, platform, flavor, format: "squashfs", version: "v", name: [hv, platform, flavor].filter(Boolean).join("-") });

describe("modifiersFor: EVE's find-modifiers-rootfs / find-modifiers-installer", () => {
  it("applies the HV's, the flavor's or the installer's, then the platform's shared file, each when present", async () => {
    const p = await withModifiers({
      "hv/kvm.yq": ".a = 1\n",
      "platform/rt/rt.yq": ".b = 1\n",
      "platform/rt/rootfs-evaluation.yq": ".c = 1\n",
      "platform/rt/installer.yq": ".d = 1\n",
      "platform/rt/rootfs.yq": ".e = 1\n", // not one of EVE's names: never applied
      "platform/shared/shared.yq": "->../rt/rt.yq", // symlinked, as EVE shares some
    });
    const list = async (v: Variant, kind: "rootfs" | "installer") => (await modifiersFor(p, v, kind)).map((f) => relative(join(p.root, "images/modifiers"), f));
    expect(await list(variant("kvm", "rt"), "rootfs")).toEqual(["hv/kvm.yq", "platform/rt/rt.yq"]);
    expect(await list(variant("kvm", "rt", "evaluation"), "rootfs")).toEqual(["hv/kvm.yq", "platform/rt/rootfs-evaluation.yq", "platform/rt/rt.yq"]);
    expect(await list(variant("kvm", "rt", "evaluation"), "installer")).toEqual(["hv/kvm.yq", "platform/rt/installer.yq", "platform/rt/rt.yq"]);
    expect(await list(variant("xen", "rt", "lts"), "rootfs")).toEqual(["platform/rt/rt.yq"]);
    expect(await list(variant("xen", "generic"), "installer")).toEqual([]);
    expect(await list(variant("kvm", "shared"), "rootfs")).toEqual(["hv/kvm.yq", "platform/shared/shared.yq"]);
  });
});
