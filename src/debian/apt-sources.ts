import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseStanzas } from "./control.js";

/** One `deb` source of the machine's apt configuration. */
export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
  signedBy?: string;
  /** Where it was read, for messages. */
  file: string;
}

/** One-line format: `deb [opt=val ...] URI SUITE [COMPONENT...]` (deb-src and comments are skipped). */
export function parseSourcesList(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (!line) continue;
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (!m) continue;
    const opts = Object.fromEntries((m[1] ?? "").trim().split(/\s+/).filter(Boolean).map((o) => o.split("=") as [string, string]));
    out.push({ uri: m[2]!, suites: [m[3]!], components: (m[4] ?? "").trim().split(/\s+/).filter(Boolean), signedBy: opts["signed-by"], file });
  }
  return out;
}

/** deb822 format (`*.sources`): Types, URIs, Suites, Components, Signed-By, Enabled. */
export function parseDeb822Sources(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  for (const s of parseStanzas(text)) {
    const types = (s.Types ?? "").split(/\s+/);
    if (!types.includes("deb") || (s.Enabled ?? "yes").toLowerCase() === "no") continue;
    const words = (v?: string) => (v ?? "").split(/\s+/).filter(Boolean);
    // Signed-By may hold an inline key block (several lines): only a file path is useful here.
    const signed = s["Signed-By"]?.trim();
    for (const uri of words(s.URIs)) {
      out.push({ uri, suites: words(s.Suites), components: words(s.Components), signedBy: signed && !signed.includes("\n") && signed.startsWith("/") ? signed : undefined, file });
    }
  }
  return out;
}

/** The `deb` sources of a machine, in apt's order: sources.list, then sources.list.d/ by file name. */
export async function readAptSources(root = "/etc/apt"): Promise<AptSource[]> {
  const out: AptSource[] = [];
  const main = join(root, "sources.list");
  const text = await readFile(main, "utf8").catch(() => undefined);
  if (text !== undefined) out.push(...parseSourcesList(text, main));
  const dir = join(root, "sources.list.d");
  const names = (await readdir(dir).catch(() => [] as string[])).sort();
  for (const n of names) {
    const p = join(dir, n);
    if (n.endsWith(".list")) out.push(...parseSourcesList(await readFile(p, "utf8").catch(() => ""), p));
    else if (n.endsWith(".sources")) out.push(...parseDeb822Sources(await readFile(p, "utf8").catch(() => ""), p));
  }
  return out;
}

/** The machine's release codename from /etc/os-release, the last resort for the suite. */
export async function osCodename(file = "/etc/os-release"): Promise<string | undefined> {
  const text = await readFile(file, "utf8").catch(() => "");
  const m = /^VERSION_CODENAME=("?)([a-z0-9-]+)\1$/m.exec(text);
  return m?.[2];
}
