/**
 * The applets of a busybox binary and where `busybox --install` puts them,
 * read from the binary itself, so it works for any architecture without
 * running it. busybox's build generates two tables (applets/applet_tables.c):
 *
 * - `applet_names`: every applet name, NUL-terminated, sorted by strcmp
 *   ("[\0[[\0acpid\0...");
 * - `applet_install_loc`: one 4-bit directory code per applet, two per byte
 *   (low nibble first): 0 /, 1 /bin, 2 /sbin, 3 /usr/bin, 4 /usr/sbin.
 *
 * The names are found as the longest sorted run of names starting at "[";
 * the location table has no marker, so kiln takes the one place in the
 * binary where every nibble is a valid code and applets whose directory has
 * been the same in every busybox for many years (ls in /bin, init in /sbin,
 * awk in /usr/bin, chroot in /usr/sbin, ...) sit where they must. More than
 * one such place, or none, is an error rather than a guess.
 */

export const BUSYBOX_DIRS = ["/", "/bin", "/sbin", "/usr/bin", "/usr/sbin"] as const;

/** Applets whose install directory is fixed in busybox's sources (include/applets.src.h and the applets' own files). */
const ANCHORS: Record<string, number> = {
  ...Object.fromEntries("cat cp date dd df echo false grep gzip ln ls mkdir mount mv ping ps pwd rm sed sh sleep tar touch true uname".split(" ").map((n) => [n, 1])),
  ...Object.fromEntries("halt ifconfig init insmod losetup mdev mkswap modprobe reboot route swapon syslogd".split(" ").map((n) => [n, 2])),
  ...Object.fromEntries("[ awk env find head sort tail test tr uniq wc wget which xargs".split(" ").map((n) => [n, 3])),
  ...Object.fromEntries("chroot crond httpd ntpd telnetd".split(" ").map((n) => [n, 4])),
};

export interface Applet {
  name: string;
  /** The directory `busybox --install` puts it in: "/", "/bin", "/sbin", "/usr/bin" or "/usr/sbin". */
  dir: (typeof BUSYBOX_DIRS)[number];
}

const NAME_RE = /^[\x21-\x7e]{1,64}$/;

/** The sorted NUL-separated applet names starting at `start`. */
function namesAt(buf: Buffer, start: number): string[] {
  const out: string[] = [];
  let i = start;
  for (;;) {
    const end = buf.indexOf(0, i);
    if (end < 0) break;
    const s = buf.toString("latin1", i, end);
    if (!NAME_RE.test(s) || (out.length && s <= out[out.length - 1]!)) break;
    out.push(s);
    i = end + 1;
  }
  return out;
}

/** The applet list and install directories of a busybox binary; a string says why they cannot be found. */
export function busyboxApplets(buf: Buffer): Applet[] | string {
  let names: string[] = [];
  for (let i = buf.indexOf("\0[\0"); i >= 0; i = buf.indexOf("\0[\0", i + 1)) {
    const n = namesAt(buf, i + 1);
    if (n.length > names.length) names = n;
  }
  if (names.length < 10) return "no applet name table (is it a busybox binary?)";
  const len = Math.ceil(names.length / 2);
  const anchors = names.map((n, i) => [i, ANCHORS[n]] as const).filter((a): a is readonly [number, number] => a[1] !== undefined);
  if (anchors.length < 8) return `its ${names.length} applets lack the common ones (ls, init, awk, chroot, ...) that locate the install directory table`;
  const nibble = (off: number, i: number) => (i & 1 ? buf[off + (i >> 1)]! >> 4 : buf[off + (i >> 1)]! & 15);
  const hits: number[] = [];
  for (let off = 0; off + len <= buf.length; off++) {
    if (!anchors.every(([i, d]) => nibble(off, i) === d)) continue;
    let ok = true;
    for (let i = 0; i < names.length && ok; i++) ok = nibble(off, i) < BUSYBOX_DIRS.length;
    if (ok) hits.push(off);
  }
  if (hits.length !== 1) return hits.length ? `${hits.length} places in the binary look like the install directory table` : "no install directory table (busybox built without FEATURE_INSTALLER?)";
  return names.map((name, i) => ({ name, dir: BUSYBOX_DIRS[nibble(hits[0]!, i)]! }));
}
