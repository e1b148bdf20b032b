import { globToRegExp } from "./glob.js";
import { baseName, joinPath, type Node, readBody, type Tree } from "./tree.js";

/**
 * /etc/ld.so.cache for an image of any architecture, written by kiln rather
 * than the host's `ldconfig -r`, which only reads libraries of the host's
 * machine ("is for unknown machine 183" for arm64) and stamps its own glibc
 * version into the file. kiln does what ldconfig does (glibc elf/ldconfig.c,
 * elf/cache.c) without creating links:
 *
 * - the directories: /etc/ld.so.conf with its `include` globs (relative to
 *   the including file), then the built-in /lib/TRIPLET and /usr/lib/TRIPLET;
 *   each once (also when two names reach one directory through a symlink,
 *   as /lib and /usr/lib after usrmerge);
 * - in each, the regular files and symlinks named lib*.so* or ld-*.so* that
 *   are ELF shared objects (ET_DYN) of the target's machine; the key is the
 *   DT_SONAME (the file name without one), the value DIR/SONAME; a symlink
 *   whose target is its own soname is listed under its own name, as ldconfig
 *   does;
 * - the flags ld.so checks: x86-64 0x0303, AArch64 0x0a03, RISC-V lp64d 0x1003
 *   (lp64 0x0f03);
 * - the "new" format (glibc-ld.so.cache1.1, little-endian), entries sorted
 *   as ldconfig sorts them (by name, numbers compared as numbers, descending),
 *   which ld.so's binary search needs; a generator extension names kiln.
 *
 * Not done: glibc-hwcaps subdirectories and the x86 ISA level of a library
 * (Debian's libraries carry neither), old-format (libc5) entries.
 */

interface Machine {
  triplet: string;
  eMachine: number;
  flags: (eFlags: number) => number;
}

const MACHINES: Record<string, Machine> = {
  amd64: { triplet: "x86_64-linux-gnu", eMachine: 62, flags: () => 0x0303 },
  arm64: { triplet: "aarch64-linux-gnu", eMachine: 183, flags: () => 0x0a03 },
  // EF_RISCV_FLOAT_ABI_DOUBLE (4): FLAG_RISCV_FLOAT_ABI_DOUBLE, else FLAG_RISCV_FLOAT_ABI_SOFT.
  riscv64: { triplet: "riscv64-linux-gnu", eMachine: 243, flags: (f) => ((f & 6) === 4 ? 0x1003 : 0x0f03) },
};

export function multiarchTriplet(arch: string): string | undefined {
  return MACHINES[arch]?.triplet;
}

/** glibc's _dl_cache_libcmp: runs of digits compare as numbers. */
export function libcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  const digit = (s: string, k: number) => k < s.length && s.charCodeAt(k) >= 48 && s.charCodeAt(k) <= 57;
  while (i < a.length) {
    if (digit(a, i)) {
      if (!digit(b, j)) return 1;
      let x = 0;
      let y = 0;
      while (digit(a, i)) x = x * 10 + a.charCodeAt(i++) - 48;
      while (digit(b, j)) y = y * 10 + b.charCodeAt(j++) - 48;
      if (x !== y) return x - y;
    } else if (digit(b, j)) {
      return -1;
    } else if (j >= b.length || a.charCodeAt(i) !== b.charCodeAt(j)) {
      return a.charCodeAt(i) - (j < b.length ? b.charCodeAt(j) : 0);
    } else {
      i++;
      j++;
    }
  }
  return j < b.length ? -b.charCodeAt(j) : 0;
}

/** The ELF facts ldconfig uses: undefined when not a 64-bit little-endian shared object of `m`. */
async function elfInfo(node: Node, m: Machine): Promise<{ soname?: string; flags: number } | undefined> {
  const h = await readBody(node, 0, 64);
  if (h.length < 64 || h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return undefined;
  if (h.readUInt16LE(16) !== 3 || h.readUInt16LE(18) !== m.eMachine) return undefined;
  const flags = m.flags(h.readUInt32LE(48));
  const phoff = Number(h.readBigUInt64LE(32));
  const phentsize = h.readUInt16LE(54);
  const phnum = h.readUInt16LE(56);
  if (phentsize < 56 || phnum === 0 || phnum > 4096) return undefined;
  const ph = await readBody(node, phoff, phentsize * phnum);
  if (ph.length < phentsize * phnum) return undefined;
  const loads: { vaddr: bigint; offset: bigint; filesz: bigint }[] = [];
  let dyn: { offset: number; size: number } | undefined;
  for (let i = 0; i < phnum; i++) {
    const o = i * phentsize;
    const type = ph.readUInt32LE(o);
    const offset = ph.readBigUInt64LE(o + 8);
    const vaddr = ph.readBigUInt64LE(o + 16);
    const filesz = ph.readBigUInt64LE(o + 32);
    if (type === 1) loads.push({ vaddr, offset, filesz });
    if (type === 2) dyn = { offset: Number(offset), size: Number(filesz) };
  }
  if (!dyn) return undefined;
  const d = await readBody(node, dyn.offset, dyn.size);
  let strtab: bigint | undefined;
  let sonameOff: bigint | undefined;
  for (let o = 0; o + 16 <= d.length; o += 16) {
    const tag = d.readBigInt64LE(o);
    if (tag === 0n) break;
    if (tag === 5n) strtab = d.readBigUInt64LE(o + 8);
    if (tag === 14n) sonameOff = d.readBigUInt64LE(o + 8);
  }
  if (strtab === undefined || sonameOff === undefined) return { flags };
  // DT_STRTAB is an address: the PT_LOAD segment that holds it gives the file offset.
  const seg = loads.find((l) => strtab! >= l.vaddr && strtab! < l.vaddr + l.filesz);
  if (!seg) return { flags };
  const at = Number(strtab - seg.vaddr + seg.offset + sonameOff);
  const s = await readBody(node, at, 256);
  const end = s.indexOf(0);
  return { soname: end > 0 ? s.toString("latin1", 0, end) : undefined, flags };
}

/** ld.so.conf and its includes, in order: the directories (as written, without a trailing slash). */
async function confDirs(tree: Tree, read: (path: string) => Promise<string | undefined>, file: string, seen: Set<string>, out: string[]): Promise<void> {
  if (seen.has(file)) return;
  seen.add(file);
  const text = await read(file);
  if (text === undefined) return;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) continue;
    const inc = /^include\s+(.+)$/.exec(line);
    if (inc) {
      for (const pat of inc[1]!.split(/\s+/)) {
        const glob = pat.startsWith("/") ? pat : joinPath(file.slice(0, file.lastIndexOf("/")) || "/", pat);
        const re = globToRegExp(glob);
        const dir = glob.slice(0, glob.lastIndexOf("/")) || "/";
        const real = tree.resolve(dir) ?? dir;
        for (const p of tree.children(real)) if (re.test(joinPath(dir, baseName(p)))) await confDirs(tree, read, joinPath(dir, baseName(p)), seen, out);
      }
      continue;
    }
    if (/^hwcap\s/.test(line)) continue;
    // Old syntax "DIR=TYPE"; several directories on one line were allowed too.
    for (const d of line.split(/[\s:,]+/)) {
      const dir = d.replace(/=.*$/, "").replace(/\/+$/, "");
      if (dir.startsWith("/")) out.push(dir);
    }
  }
}

export interface LdCacheResult {
  cache: Buffer;
  /** How many libraries it lists. */
  libs: number;
  dirs: string[];
}

/**
 * Build ld.so.cache for the libraries in `tree` (kept entries only: what
 * `paths` leaves out is not in the image). `read` gives the text of small
 * config files.
 */
export async function buildLdCache(tree: Tree, arch: string, read: (path: string) => Promise<string | undefined>): Promise<LdCacheResult> {
  const m = MACHINES[arch];
  if (!m) throw new Error(`no ld.so.cache flags known for ${arch}`);
  const listed: string[] = [];
  await confDirs(tree, read, "/etc/ld.so.conf", new Set(), listed);
  listed.push(`/lib/${m.triplet}`, `/usr/lib/${m.triplet}`);
  const dirs: string[] = [];
  const real = new Set<string>();
  for (const d of listed) {
    const r = tree.resolve(d);
    if (r === undefined || !tree.dirs.has(r) || real.has(r)) continue;
    real.add(r);
    dirs.push(d);
  }
  const entries: { key: string; value: string; flags: number }[] = [];
  for (const dir of dirs) {
    const realDir = tree.resolve(dir)!;
    const bySoname = new Map<string, number>();
    for (const p of tree.children(realDir)) {
      const name = baseName(p);
      if (name.startsWith(".") || !(name.startsWith("lib") || name.startsWith("ld-")) || !name.includes(".so")) continue;
      const node = tree.files.get(p);
      if (!node || (node.entry.type !== "file" && node.entry.type !== "symlink" && node.entry.type !== "link")) continue;
      let file = p;
      let target = node;
      if (node.entry.type === "symlink") {
        const hit = tree.lookup(p);
        if (!hit || hit.node.entry.type === "directory") continue;
        file = hit.path;
        target = hit.node;
      }
      if (target.entry.type === "link") {
        const t = tree.files.get(`/${target.entry.linkname!.replace(/^\/+/, "")}`);
        if (!t) continue;
        target = t;
      }
      if (target.entry.type !== "file") continue;
      const info = await elfInfo(target, m);
      if (!info) continue;
      let soname = info.soname ?? name;
      if (node.entry.type === "symlink") {
        // ldconfig: a link whose target is named as the soname (or is the ".so" for ld) is listed under the link's own name.
        const realBase = baseName(file);
        const isLink = realBase === soname || (realBase.endsWith(".so") && soname.startsWith(realBase));
        if (isLink) soname = name;
      }
      if (!bySoname.has(soname)) bySoname.set(soname, info.flags);
    }
    for (const [soname, flags] of bySoname) entries.push({ key: soname, value: joinPath(dir, soname), flags });
  }
  // ldconfig's order (elf/cache.c compare): names descending, then flags descending; stable otherwise.
  entries.sort((a, b) => libcmp(b.key, a.key) || b.flags - a.flags);
  return { cache: writeCache(entries), libs: entries.length, dirs };
}

const MAGIC = "glibc-ld.so.cache1.1";
const HEADER = 48;
const ENTRY = 24;
const EXTENSION_MAGIC = 0xeaa42174;
const GENERATOR = "kiln";

function writeCache(entries: { key: string; value: string; flags: number }[]): Buffer {
  // Strings: each value once; the key is the value's tail (DIR/SONAME), as ldconfig's string table shares suffixes.
  const strings: Buffer[] = [];
  const offsets = new Map<string, number>();
  let pos = HEADER + ENTRY * entries.length;
  const start = pos;
  const place = (s: string) => {
    let o = offsets.get(s);
    if (o === undefined) {
      o = pos;
      offsets.set(s, o);
      const b = Buffer.from(`${s}\0`, "latin1");
      strings.push(b);
      pos += b.length;
    }
    return o;
  };
  const slots = entries.map((e) => {
    const value = place(e.value);
    return { flags: e.flags, value, key: value + e.value.length - e.key.length };
  });
  const lenStrings = pos - start;
  const extOffset = (pos + 3) & ~3;
  const buf = Buffer.alloc(extOffset + 8 + 16 + GENERATOR.length);
  buf.write(MAGIC, 0, "latin1");
  buf.writeUInt32LE(entries.length, 20);
  buf.writeUInt32LE(lenStrings, 24);
  buf[28] = 2; // cache_file_new_flags_endian_little
  buf.writeUInt32LE(extOffset, 32);
  slots.forEach((s, i) => {
    const o = HEADER + i * ENTRY;
    buf.writeInt32LE(s.flags, o);
    buf.writeUInt32LE(s.key, o + 4);
    buf.writeUInt32LE(s.value, o + 8);
    // osversion (unused) and hwcap stay 0.
  });
  Buffer.concat(strings).copy(buf, start);
  buf.writeUInt32LE(EXTENSION_MAGIC, extOffset);
  buf.writeUInt32LE(1, extOffset + 4);
  // One section: cache_extension_tag_generator, flags 0, offset, size.
  buf.writeUInt32LE(0, extOffset + 8);
  buf.writeUInt32LE(0, extOffset + 12);
  buf.writeUInt32LE(extOffset + 24, extOffset + 16);
  buf.writeUInt32LE(GENERATOR.length, extOffset + 20);
  buf.write(GENERATOR, extOffset + 24, "latin1");
  return buf;
}
