import { KilnError, type Location } from "../core/errors.js";
import { tail } from "../core/exec.js";
import { findTool } from "../core/tools.js";
import { SHARE_DIR } from "../core/paths.js";

/** kiln's implementation of the Pygos helper functions (share/pygos/helpers.sh). */
export const HELPERS = `${SHARE_DIR}pygos/helpers.sh`;

/** A shell variable after evaluation: a scalar's value, or an array's `declare -p` text. */
export interface ShellVar {
  array: boolean;
  value: string;
}

/** Quote for bash (single quotes). */
export function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Run a bash program with a clean environment; resolves stdout (NUL-separated records are the callers' business). */
export async function bash(script: string, args: string[], env: Record<string, string>, where: Location): Promise<string> {
  const { execa } = await import("execa");
  const res = await execa(await findTool("bash"), ["--noprofile", "--norc", "-c", script, "kiln", ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C", ...env },
    extendEnv: false,
    reject: false,
    encoding: "utf8",
    stripFinalNewline: false,
    timeout: 120_000,
  });
  if (res.exitCode !== 0) {
    throw new KilnError("E_PYGOS_SCRIPT", `evaluating ${where.file} failed (bash exit code ${res.exitCode ?? "?"})`, {
      location: where,
      details: tail(`${res.stderr}`.trim() || res.stdout, 15),
      hint: "run `bash -n` on the file to find a syntax error",
    });
  }
  return res.stdout;
}

/** The bash fragment that prints every variable set since `__kiln_before` was taken, as NUL-separated records. */
export const DUMP_NEW_VARS = `
for __kiln_v in $(compgen -v); do
  case "$__kiln_v" in __kiln_*|BASH*|FUNCNAME|_|PIPESTATUS|LINENO|RANDOM|SECONDS|SRANDOM|EPOCHSECONDS|EPOCHREALTIME|OPTIND|OPTARG|COLUMNS|LINES) continue ;; esac
  case "$__kiln_before" in *" $__kiln_v "*) continue ;; esac
  __kiln_d="$(declare -p "$__kiln_v" 2>/dev/null)"
  case "$__kiln_d" in
    "declare -a"*|"declare -A"*) printf 'A\\0%s\\0%s\\0' "$__kiln_v" "$__kiln_d" ;;
    *) printf 'S\\0%s\\0%s\\0' "$__kiln_v" "\${!__kiln_v}" ;;
  esac
done
`;

/**
 * Source files in order in one bash (so arrays and `X="$X more"` appends work
 * as in Pygos) and return the variables they set.
 */
export async function evalShellFiles(files: string[], env: Record<string, string>, where: Location): Promise<Map<string, ShellVar>> {
  if (!files.length) return new Map();
  const script = [
    `__kiln_before=" $(compgen -v | tr '\\n' ' ') "`,
    `for __kiln_f in "$@"; do source "$__kiln_f" || { echo "kiln: $__kiln_f returned non-zero" >&2; exit 3; }; done`,
    DUMP_NEW_VARS,
  ].join("\n");
  return parseVars(await bash(script, files, env, where));
}

export function parseVars(out: string): Map<string, ShellVar> {
  const parts = out.split("\0");
  const vars = new Map<string, ShellVar>();
  for (let i = 0; i + 2 < parts.length; i += 3) vars.set(parts[i + 1]!, { array: parts[i] === "A", value: parts[i + 2]! });
  return vars;
}

/** A value as shell text for files kiln writes (init.conf): scalars quoted, arrays as bash prints them. */
export function shellAssignment(name: string, v: ShellVar): string {
  if (!v.array) return `${name}=${q(v.value)}`;
  return v.value.replace(/^declare -[aA-]+ /, "");
}
