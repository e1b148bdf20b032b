import type { PygosProject } from "./load.js";
import { mergedList, overrideOf, type ProductLayers } from "./layers.js";
import { shellAssignment, type ShellVar } from "./shell.js";

/** A file kiln writes into a product's root file system (init configuration, network files …). */
export interface GeneratedFile {
  path: string;
  data: Buffer;
  mode: number;
}

const words = (v: ShellVar | undefined): string[] => {
  if (!v) return [];
  if (!v.array) return v.value.split(/\s+/).filter(Boolean);
  // an array printed by declare -p: ([0]="a" [1]="b")
  return [...v.value.matchAll(/\[[^\]]*\]="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, "$1"));
};

/**
 * The services an INIT configuration asks for, one name per line: a getty per
 * GETTY_TTY, a DHCP client per DHCP_PORTS entry, hwclock or the ntpdate
 * fallback (HWCLOCK), the raw SERVICES, and nftables/sysctl when the layers
 * have their files (as Pygos enables them).
 */
export function services(init: Map<string, ShellVar>, layers: ProductLayers): string[] {
  const out = [
    ...words(init.get("GETTY_TTY")).map((t) => `agetty@${t}`),
    ...words(init.get("DHCP_PORTS")).map((p) => `dhcpcd@${p}`),
    init.get("HWCLOCK")?.value === "yes" ? "hwclock" : "ntpdate",
    ...words(init.get("SERVICES")),
    ...(overrideOf(layers, "nftables.rules") ? ["nftables"] : []),
    ...(overrideOf(layers, "sysctl.conf") ? ["sysctl"] : []),
  ];
  return [...new Set(out)];
}

const text = (s: string, mode = 0o644): { data: Buffer; mode: number } => ({ data: Buffer.from(s), mode });

/**
 * What the product's layers put into the root file system besides packages
 * (docs/pygos.md lists the paths): the init configuration from INIT, the
 * loader path from LDPATH, network naming and interfaces, firewall and sysctl
 * settings, and os-release.
 */
export function generatedFiles(py: PygosProject, osName: string, osRelease: string): GeneratedFile[] {
  const layers = py.layers!;
  const out: GeneratedFile[] = [];
  const add = (path: string, f: { data: Buffer; mode: number }) => out.push({ path, ...f });
  const init = py.initVars;
  const header = `# written by kiln from the INIT files of product ${py.product} (layers: ${layers.layers.map((l) => l.name).join(" ")})\n`;
  add("etc/kiln/init.conf", text(header + [...init.keys()].sort().map((k) => `${shellAssignment(k, init.get(k)!)}\n`).join("")));
  add("etc/kiln/services", text(services(init, layers).map((s) => `${s}\n`).join("")));
  const modules = words(init.get("MODULES"));
  if (modules.length) add("etc/modules-load.d/kiln.conf", text(modules.map((m) => `${m}\n`).join("")));
  const ld = mergedList(layers, "LDPATH").map((w) => w.word);
  if (ld.length) add("etc/ld.so.conf", text(ld.map((d) => `${d}\n`).join("")));
  const copy = (rel: string, path: string) => {
    const f = overrideOf(layers, rel);
    if (f) add(path, { data: f.text, mode: 0o644 });
  };
  copy("ifrename", "etc/netcfg/ifrename");
  for (const rel of [...new Set(layers.files.map((f) => f.rel).filter((r) => r.startsWith("interfaces/")))].sort()) copy(rel, `etc/netcfg/${rel}`);
  copy("nftables.rules", "etc/nftables.rules");
  copy("sysctl.conf", "etc/sysctl.conf");
  add("etc/os-release", text(`NAME="${osName}"\nID=${osName.toLowerCase().replace(/[^a-z0-9._-]/g, "")}\nVERSION_ID="${osRelease}"\nVARIANT_ID=${py.product}\n`));
  return out;
}
