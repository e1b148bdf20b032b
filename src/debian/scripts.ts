import { KilnError } from "../core/errors.js";
import { busyboxApplets } from "./busybox.js";
import { baseName, dirName, joinPath, type Node, normalizePath, readBody, relativeTarget, type Tree } from "./tree.js";

/**
 * What some maintainer scripts would have done, done by kiln on the
 * installed tree (no script runs): merged /usr, busybox applet links, the
 * base accounts. ld.so.cache is in ldcache.ts.
 */

const ROOT = (path: string, entry: Partial<Node["entry"]> & Pick<Node["entry"], "type">, owner: string): Node => ({
  entry: { path, mode: entry.type === "symlink" ? 0o777 : entry.type === "directory" ? 0o755 : 0o644, uid: 0, gid: 0, ...entry },
  owner,
});

function conflict(message: string, hint: string): KilnError {
  return new KilnError("E_DEBIAN_CONFLICT", message, { hint });
}

/** Are two nodes the same content (identical symlinks, or files with equal bytes and metadata)? */
async function sameContent(a: Node, b: Node): Promise<boolean> {
  if (a.entry.type !== b.entry.type || a.entry.mode !== b.entry.mode || a.entry.uid !== b.entry.uid || a.entry.gid !== b.entry.gid) return false;
  if (a.entry.type === "symlink") return a.entry.linkname === b.entry.linkname;
  if (a.entry.type !== "file") return false;
  if (a.group !== undefined && a.group === b.group) return true;
  const [x, y] = await Promise.all([readBody(a), readBody(b)]);
  return x.equals(y);
}

export const USRMERGE_DIRS = ["bin", "sbin", "lib", "lib32", "lib64", "libx32", "libo32"] as const;

/**
 * Debian's usrmerge (convert-usrmerge): move everything under /bin, /sbin,
 * /lib and, when present, /lib32, /lib64, /libx32, /libo32 into the same
 * place under /usr and replace each by a relative symlink (`bin -> usr/bin`).
 * A path in both places is fine when both are the same (identical files or
 * symlinks) or one is a symlink to the other (the real file is kept);
 * otherwise it is E_DEBIAN_CONFLICT. Moved relative symlinks are rewritten
 * so they point where they pointed before. The dpkg database keeps the
 * packages' own paths (/bin/x), which resolve through the new links, as on a
 * merged Debian system.
 */
export async function usrmerge(tree: Tree, log: (line: string) => void): Promise<void> {
  const mapped = (p: string): string => {
    for (const d of USRMERGE_DIRS) if (p === `/${d}` || p.startsWith(`/${d}/`)) return `/usr${p}`;
    return p;
  };
  let count = 0;
  for (const d of USRMERGE_DIRS) {
    const top = `/${d}`;
    const link = tree.links.get(top);
    if (link) {
      if (normalizePath(joinPath("/", link.target)) !== `/usr/${d}`) throw conflict(`usrmerge: ${top} is a symlink to ${link.target} (from ${link.owner}), not to usr/${d}`, "turn usrmerge off, or exclude the package that ships the link");
      continue;
    }
    const present = tree.dirs.has(top) || [...tree.files.keys()].some((p) => p.startsWith(`${top}/`));
    if (!present && !["bin", "sbin", "lib"].includes(d)) continue;
    // Directories first (shallow to deep), then everything else.
    for (const p of [...tree.dirs.keys()].filter((p) => p.startsWith(`${top}/`)).sort()) {
      const to = mapped(p);
      const there = tree.files.get(to);
      if (there) throw conflict(`usrmerge: ${p} is a directory (from ${tree.dirs.get(p)!.owner}) but ${to} is a ${there.entry.type} (from ${there.owner})`, "turn usrmerge off");
      if (!tree.dirs.has(to)) tree.dirs.set(to, { ...tree.dirs.get(p)!, entry: { ...tree.dirs.get(p)!.entry, path: to } });
      tree.dirs.delete(p);
    }
    for (const p of [...tree.files.keys()].filter((p) => p.startsWith(`${top}/`)).sort()) {
      const node = tree.files.get(p)!;
      const to = mapped(p);
      tree.files.delete(p);
      tree.links.delete(p);
      let entry = { ...node.entry, path: to };
      if (entry.type === "symlink" && !entry.linkname!.startsWith("/")) {
        // Keep it pointing at the same place: resolve from the old spot, then map into /usr.
        const abs = normalizePath(joinPath(dirName(p), entry.linkname!));
        if (abs !== undefined) entry = { ...entry, linkname: relativeTarget(to, mapped(abs)) };
      }
      const moving: Node = { ...node, entry };
      const there = tree.files.get(to);
      if (there) {
        const pointsAt = (n: Node, from: string, at: string) => n.entry.type === "symlink" && mapped(normalizePath(n.entry.linkname!.startsWith("/") ? n.entry.linkname! : joinPath(dirName(from), n.entry.linkname!)) ?? "") === at;
        if (pointsAt(moving, to, to) || (await sameContent(moving, there))) continue;
        // /usr/bin/x -> /bin/x (or ../../bin/x): the real file moves over the link; anything else differs.
        if (!pointsAt(there, to, to)) throw conflict(`usrmerge: ${p} (from ${node.owner}) and ${to} (from ${there.owner}) are different files`, "turn usrmerge off, or exclude one of the packages");
      }
      if (tree.dirs.has(to)) throw conflict(`usrmerge: ${p} (from ${node.owner}) would replace the directory ${to}`, "turn usrmerge off");
      tree.files.set(to, moving);
      if (entry.type === "symlink") tree.links.set(to, { target: entry.linkname!, owner: node.owner });
      else tree.links.delete(to);
      count++;
    }
    // Links seen but not kept (`paths`) move too, so later lookups resolve.
    for (const [p, l] of [...tree.links]) {
      if (!p.startsWith(`${top}/`)) continue;
      tree.links.delete(p);
      if (!tree.links.has(mapped(p))) tree.links.set(mapped(p), l);
    }
    const old = tree.dirs.get(top);
    tree.dirs.delete(top);
    if (!tree.dirs.has(`/usr/${d}`)) tree.dirs.set(`/usr/${d}`, old ? { ...old, entry: { ...old.entry, path: `/usr/${d}` } } : ROOT(`/usr/${d}`, { type: "directory" }, "kiln:usrmerge"));
    if (!tree.dirs.has("/usr")) tree.dirs.set("/usr", ROOT("/usr", { type: "directory" }, "kiln:usrmerge"));
    tree.files.set(top, ROOT(top, { type: "symlink", linkname: `usr/${d}` }, "kiln:usrmerge"));
    tree.links.set(top, { target: `usr/${d}`, owner: "kiln:usrmerge" });
  }
  log(`usrmerge: ${count} entries moved into /usr; /bin, /sbin, /lib${USRMERGE_DIRS.slice(3).filter((d) => tree.links.get(`/${d}`)?.owner === "kiln:usrmerge").map((d) => `, /${d}`).join("")} are symlinks`);
}

const BUSYBOX_PATHS = ["/bin/busybox", "/usr/bin/busybox", "/sbin/busybox", "/usr/sbin/busybox"];

/**
 * `busybox --install -s`: a symlink to the busybox binary for every applet,
 * in the directory busybox assigns it, unless that path exists already (a
 * real tool, or /bin/sh from dash, wins). The applet list and directories
 * are read from the binary (see busybox.ts), so this works for any
 * architecture.
 */
export async function busyboxLinks(tree: Tree, log: (line: string) => void): Promise<void> {
  const found = BUSYBOX_PATHS.map((p) => ({ p, hit: tree.lookup(p) })).find((x) => x.hit?.node.entry.type === "file");
  if (!found) {
    throw new KilnError("E_DEBIAN_SCRIPT", "busyboxLinks: no busybox binary in the image (none of /bin/busybox, /usr/bin/busybox, /sbin/busybox, /usr/sbin/busybox)", {
      hint: "add busybox-static (or busybox) to packages, and keep /bin/busybox in `paths`",
    });
  }
  const applets = busyboxApplets(await readBody(found.hit!.node));
  if (typeof applets === "string") throw new KilnError("E_DEBIAN_SCRIPT", `busyboxLinks: cannot read the applets of ${found.p}: ${applets}`, { hint: "turn busyboxLinks off and make the links with a files package" });
  let made = 0;
  for (const a of applets) {
    const parent = tree.resolve(a.dir) ?? a.dir;
    const at = joinPath(parent, a.name);
    if (tree.files.has(at) || tree.dirs.has(at) || tree.links.has(at)) continue;
    if (tree.files.has(parent)) continue;
    tree.files.set(at, ROOT(at, { type: "symlink", linkname: found.p }, "kiln:busyboxLinks"));
    tree.links.set(at, { target: found.p, owner: "kiln:busyboxLinks" });
    made++;
  }
  log(`busyboxLinks: ${made} of ${applets.length} applets linked to ${found.p} (the others exist already)`);
}

/** Debian's base accounts when base-passwd is not installed (its passwd.master and group.master otherwise). */
const MIN_PASSWD = "root:*:0:0:root:/root:/bin/sh\ndaemon:*:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nnobody:*:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const MIN_GROUP = "root:*:0:\ndaemon:*:1:\nnogroup:*:65534:\n";

export interface AccountsSource {
  passwd?: Buffer;
  group?: Buffer;
}

/**
 * /etc/passwd and /etc/group as base-passwd's postinst writes them on a new
 * system (copies of /usr/share/base-passwd/{passwd,group}.master, or a
 * minimal root/daemon/nobody set), then /etc/shadow and /etc/gshadow as
 * `shadowconfig on` (pwconv, grpconv) makes them: every password moves to
 * the shadow file (all locked, "*"), the last change is the day of
 * SOURCE_DATE_EPOCH. Files a package already ships are left alone.
 */
export function accounts(tree: Tree, master: AccountsSource, epoch: number, log: (line: string) => void): void {
  const passwd = (master.passwd?.toString("utf8") ?? MIN_PASSWD).split("\n").filter((l) => l.includes(":"));
  const group = (master.group?.toString("utf8") ?? MIN_GROUP).split("\n").filter((l) => l.includes(":"));
  const day = Math.floor(epoch / 86400);
  const shadowGid = Number(group.map((l) => l.split(":")).find((f) => f[0] === "shadow")?.[2] ?? 0);
  const files: [string, string, number, number][] = [
    ["/etc/passwd", passwd.map((l) => l.split(":").map((f, i) => (i === 1 ? "x" : f)).join(":")).join("\n"), 0o644, 0],
    ["/etc/group", group.map((l) => l.split(":").map((f, i) => (i === 1 ? "x" : f)).join(":")).join("\n"), 0o644, 0],
    ["/etc/shadow", passwd.map((l) => l.split(":")).map((f) => `${f[0]}:${f[1] === "x" || !f[1] ? "*" : f[1]}:${day}:0:99999:7:::`).join("\n"), 0o640, shadowGid],
    ["/etc/gshadow", group.map((l) => l.split(":")).map((f) => `${f[0]}:${f[1] === "x" || !f[1] ? "*" : f[1]}::${f[3] ?? ""}`).join("\n"), 0o640, shadowGid],
  ];
  const made: string[] = [];
  for (const [path, text, mode, gid] of files) {
    const at = tree.resolve(path) ?? path;
    if (tree.files.has(at)) continue;
    tree.files.set(at, ROOT(at, { type: "file", mode, gid, source: Buffer.from(`${text}\n`), size: Buffer.byteLength(`${text}\n`) }, "kiln:accounts"));
    made.push(baseName(path));
  }
  log(`accounts: ${made.join(", ") || "nothing"} written from ${master.passwd ? "base-passwd's passwd.master and group.master" : "kiln's minimal set (root, daemon, nobody)"}`);
}
