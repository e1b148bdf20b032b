/**
 * Debian's license short names (debian/copyright, copyright-format 1.0) as
 * SPDX license ids. The names Debian uses that SPDX has under another spelling
 * are mapped; what SPDX does not list (public-domain, "GPL-2+ with OpenSSL
 * exception" …) becomes a `LicenseRef-` of its own, declared in the SPDX
 * document and given by name in CycloneDX.
 */
const VERSIONED = /^(A?GPL|LGPL|GFDL)-(\d(?:\.\d)?)(\+)?$/i;

const FIXED: Record<string, string> = {
  "apache-2.0": "Apache-2.0",
  "apache-2": "Apache-2.0",
  artistic: "Artistic-1.0-Perl",
  "artistic-2.0": "Artistic-2.0",
  "bsd-2-clause": "BSD-2-Clause",
  "bsd-3-clause": "BSD-3-Clause",
  "bsd-4-clause": "BSD-4-Clause",
  "bsl-1.0": "BSL-1.0",
  "cc0-1.0": "CC0-1.0",
  cc0: "CC0-1.0",
  curl: "curl",
  expat: "MIT",
  mit: "MIT",
  isc: "ISC",
  "mpl-1.1": "MPL-1.1",
  "mpl-2.0": "MPL-2.0",
  openssl: "OpenSSL",
  "psf-2": "PSF-2.0",
  "python-2.0": "Python-2.0",
  x11: "X11",
  zlib: "Zlib",
  "unicode-dfs-2016": "Unicode-DFS-2016",
};

/** GNU licenses: GPL-2 → GPL-2.0-only, GPL-2+ → GPL-2.0-or-later (GFDL, LGPL, AGPL the same way). */
function gnu(name: string): string | undefined {
  const m = VERSIONED.exec(name);
  if (!m) return undefined;
  const family = m[1]!.toUpperCase();
  const version = m[2]!.includes(".") ? m[2]! : `${m[2]}.0`;
  return `${family}-${version}-${m[3] ? "or-later" : "only"}`;
}

/** The SPDX id of a Debian license name, or undefined when SPDX has none. */
export function spdxLicenseId(debianName: string): string | undefined {
  const n = debianName.trim();
  return FIXED[n.toLowerCase()] ?? gnu(n);
}

/** `LicenseRef-debian-<name>`: letters, digits, `.` and `-` only (`+` spelled `plus`, so GPL-2 and GPL-2+ stay apart). */
export function licenseRef(debianName: string): string {
  return `LicenseRef-debian-${debianName.trim().replace(/\+/g, "plus").replace(/[^A-Za-z0-9.]+/g, "-").replace(/^-+|-+$/g, "") || "unnamed"}`;
}

/** One id per Debian name: SPDX's, else a LicenseRef. */
export function licenseIdOf(debianName: string): string {
  return spdxLicenseId(debianName) ?? licenseRef(debianName);
}

/**
 * A Debian license field's first line ("GPL-2+ or Artistic", "LGPL-2.1 and
 * BSD-3-clause") as an SPDX expression; `refs` are the names that became
 * LicenseRefs (to be declared in the document). An exception ("with OpenSSL
 * exception") keeps the whole name as one LicenseRef.
 */
export function licenseExpression(debianName: string): { expr: string; refs: [string, string][] } {
  const parts = /\bwith\b/i.test(debianName) ? [debianName.trim()] : debianName.trim().split(/\s+(or|and)\s+/i);
  const refs: [string, string][] = [];
  const out = parts.map((p, i) => {
    if (i % 2) return p.toUpperCase();
    const id = licenseIdOf(p);
    if (!spdxLicenseId(p)) refs.push([id, p.trim()]);
    return id;
  });
  return { expr: out.length > 1 ? `(${out.join(" ")})` : out[0]!, refs };
}
