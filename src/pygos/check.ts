import type { Project } from "../config/project.js";
import type { PygosRecipe } from "../config/schema.js";
import { eachLimit } from "../oci/transfer.js";
import { copiesOf } from "./layers.js";
import { layerEnv } from "./load.js";
import { HELPERS } from "./shell.js";

export interface UpdateCheck {
  package: string;
  version: string;
  /** What check_update printed (its last line); empty when it printed nothing (up to date). */
  newest: string;
  status: "current" | "update" | "no check_update" | "failed";
  message?: string;
}

/** Each script's check_update runs with the helpers and the product's TOOLCHAIN, like a build step, but with the network (it asks upstream). */
const CHECK = `source "$KILN_HELPERS"
while IFS= read -r __kiln_f; do [ -n "$__kiln_f" ] && source "$__kiln_f"; done <<< "$KILN_TCFILES"
cd "$KILN_PKGDIR"
source "$KILN_SCRIPT" > /dev/null
declare -F check_update > /dev/null || exit 91
check_update
`;

/** Run every Pygos package's check_update (four at a time, a minute each at most). */
export async function checkPygosUpdates(project: Project, names: string[]): Promise<UpdateCheck[]> {
  const py = project.pygos!;
  const pkgs = [...project.packages.values()].filter((p) => p.recipe.kind === "pygos" && (!names.length || names.includes(p.name)));
  const { execa } = await import("execa");
  const out = new Map<string, UpdateCheck>();
  await eachLimit(pkgs, 4, async (p) => {
    const r = p.recipe as PygosRecipe;
    const res = await execa("bash", ["--noprofile", "--norc", "-c", CHECK], {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        LC_ALL: "C",
        ...layerEnv(project.root, py.layers),
        TARGET: r.toolchain.target,
        HOSTTUPLE: py.toolchain.hostTuple,
        KILN_HELPERS: HELPERS,
        KILN_TCFILES: py.layers ? copiesOf(py.layers, "TOOLCHAIN").map((f) => f.abs).join("\n") : "",
        KILN_PKGDIR: p.dir,
        KILN_SCRIPT: p.file.path,
      },
      extendEnv: false,
      reject: false,
      encoding: "utf8",
      timeout: 60_000,
    });
    const version = r.meta.version;
    const newest = res.stdout.trim().split("\n").filter(Boolean).at(-1)?.trim() ?? "";
    if (res.exitCode === 91) out.set(p.name, { package: p.name, version, newest: "", status: "no check_update" });
    else if (res.exitCode !== 0) out.set(p.name, { package: p.name, version, newest, status: "failed", message: res.stderr.trim().split("\n").at(-1) ?? `exit code ${res.exitCode}` });
    else out.set(p.name, { package: p.name, version, newest, status: !newest || newest === version ? "current" : "update" });
  });
  return pkgs.map((p) => out.get(p.name)!);
}
