import { chmod, mkdir, readdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { KilnError, type Location } from "../core/errors.js";
import type { ShellVar } from "./shell.js";

/**
 * Where a product's compiler comes from (TOOLCHAIN's TC_KIND, a kiln
 * variable): `host` (the machine's gcc, TARGET = the host triplet), `debian`
 * (Debian's cross compilers, /usr/bin/TARGET-gcc from gcc-TARGET), or `source`
 * (built from source by the tree's toolchain packages, as Pygos does).
 */
export type ToolchainKind = "host" | "debian" | "source";

export interface Toolchain {
  kind: ToolchainKind;
  target: string;
  hostTuple: string;
  /** kiln's name of the target architecture (amd64, arm64, riscv64). */
  arch: string;
  /** Toolchain packages (kind source): built first, unpacked into TCDIR for every other package. */
  packages: string[];
}

const HOST_TUPLES: Record<string, string> = { x64: "x86_64-linux-gnu", arm64: "aarch64-linux-gnu", riscv64: "riscv64-linux-gnu" };

export function hostTuple(): string {
  return HOST_TUPLES[process.arch] ?? `${process.arch}-linux-gnu`;
}

/** kiln's arch for a GNU triplet, or undefined. */
export function archOfTriplet(t: string): string | undefined {
  const cpu = t.split("-")[0] ?? "";
  if (/^(x86_64|amd64)$/.test(cpu)) return "amd64";
  if (/^(aarch64|arm64)$/.test(cpu)) return "arm64";
  if (/^riscv64$/.test(cpu)) return "riscv64";
  return undefined;
}

const cpuOf = (t: string) => t.split("-")[0] ?? t;

/** Resolve TC_KIND, TARGET and the toolchain packages from a product's TOOLCHAIN variables. */
export function resolveToolchain(vars: Map<string, ShellVar>, pkgNames: string[], where: Location): Toolchain {
  const get = (n: string) => (vars.get(n)?.array ? undefined : vars.get(n)?.value.trim() || undefined);
  const declared = get("TC_PACKAGES")?.split(/\s+/);
  const tcPkgs = declared ?? pkgNames.filter((n) => n.startsWith("tc-"));
  const target = get("TARGET");
  const kindRaw = get("TC_KIND") ?? (!target ? "host" : tcPkgs.length ? "source" : "debian");
  if (!["host", "debian", "source"].includes(kindRaw)) {
    throw new KilnError("E_PYGOS_TOOLCHAIN", `TC_KIND=${kindRaw} is not one of host, debian, source`, { location: where, hint: "host: the machine's gcc; debian: gcc-TARGET from Debian; source: the tree's toolchain packages" });
  }
  const kind = kindRaw as ToolchainKind;
  const host = hostTuple();
  const t = kind === "host" ? (target ?? host) : target;
  if (!t) throw new KilnError("E_PYGOS_TOOLCHAIN", `TC_KIND=${kind} needs TARGET (the target triplet, e.g. aarch64-linux-gnu)`, { location: where });
  if (kind === "host" && archOfTriplet(t) !== archOfTriplet(host)) {
    throw new KilnError("E_PYGOS_TOOLCHAIN", `TC_KIND=host builds for this machine (${host}), but TARGET is ${t}`, { location: where, hint: "use TC_KIND=debian (Debian's cross compiler) or TC_KIND=source" });
  }
  const arch = archOfTriplet(t);
  if (!arch) throw new KilnError("E_PYGOS_TOOLCHAIN", `TARGET=${t}: kiln builds images for x86_64, aarch64 and riscv64 targets only`, { location: where });
  if (kind === "source" && !tcPkgs.length) {
    throw new KilnError("E_PYGOS_TOOLCHAIN", "TC_KIND=source, but the tree has no toolchain packages", { location: where, hint: "add pkg/tc-*/build scripts, or name them in TC_PACKAGES" });
  }
  return { kind, target: t, hostTuple: host, arch, packages: kind === "source" ? tcPkgs : [] };
}

const WRAPPED = ["gcc", "g++", "cc", "c++", "cpp"];

/**
 * TCDIR/bin for the host and debian kinds: the machine's TARGET-* tools, with
 * the compilers wrapped so that the staging sysroot's headers and libraries
 * are found (a Pygos toolchain has its sysroot built in; these do not), and
 * TC_HARDENING's flags added. The sysroot is the step's (KILN_SYSROOT, read
 * when the wrapper runs), so one folder serves every step of a product.
 */
export async function writeToolchainDir(tc: Toolchain, tcDir: string, hardening: boolean): Promise<void> {
  const bin = join(tcDir, "bin");
  await mkdir(bin, { recursive: true });
  const prefix = `${tc.target}-`;
  const have = (await readdir("/usr/bin")).filter((n) => n.startsWith(prefix)).sort();
  if (!have.some((n) => n === `${prefix}gcc`)) {
    const pkg = tc.kind === "host" ? "gcc" : `gcc-${tc.target}`;
    throw new KilnError("E_TOOL_MISSING", `the compiler ${prefix}gcc is not installed`, { hint: `install it with: apt-get install -y ${pkg}` });
  }
  const hard = hardening ? " -fPIE -pie -fstack-protector-all -Wl,-z,relro -Wl,-z,now" : "";
  for (const n of have) {
    const tool = n.slice(prefix.length);
    if (WRAPPED.includes(tool)) {
      const inc = ` -I"$s/include" -I"$s/usr/include"`;
      const flags = tool === "cpp" ? inc : `${inc} -L"$s/lib" -L"$s/usr/lib" -Wl,-rpath-link,"$s/lib" -Wl,-rpath-link,"$s/usr/lib"`;
      // Flags only when there is something to compile or link: `gcc -v` or `-print-file-name` must stay as they are.
      const body = [
        "#!/bin/sh",
        `# kiln: ${n} with the staging sysroot ($KILN_SYSROOT)${hard ? " and TC_HARDENING's flags" : ""}`,
        `s="\${KILN_SYSROOT:-}"`,
        `for a in "$@"; do case "$a" in -*) ;; *)`,
        `  if [ -n "$s" ]; then exec /usr/bin/${n} "$@"${flags}${tool === "cpp" ? "" : hard}; fi`,
        `  exec /usr/bin/${n} "$@"${tool === "cpp" ? "" : hard} ;; esac; done`,
        `exec /usr/bin/${n} "$@"`,
        "",
      ];
      await writeFile(join(bin, n), body.join("\n"));
      await chmod(join(bin, n), 0o755);
    } else {
      await symlink(`/usr/bin/${n}`, join(bin, n));
    }
  }
}

/** CMAKETCFILE: a CMake toolchain file for the target, finding libraries and headers only in the staging sysroot. */
export function cmakeToolchainFile(tc: Toolchain, tcDir: string, sysroot: string): string {
  const lines = [
    "# written by kiln for Pygos packages",
    ...(tc.kind === "host" ? [] : ["set(CMAKE_SYSTEM_NAME Linux)", `set(CMAKE_SYSTEM_PROCESSOR ${cpuOf(tc.target)})`]),
    `set(CMAKE_C_COMPILER "${tcDir}/bin/${tc.target}-gcc")`,
    `set(CMAKE_CXX_COMPILER "${tcDir}/bin/${tc.target}-g++")`,
    `set(CMAKE_FIND_ROOT_PATH "${sysroot}")`,
    "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)",
    "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)",
    "set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)",
    "set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)",
    "",
  ];
  return lines.join("\n");
}
