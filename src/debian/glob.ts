/**
 * `paths` globs of a debian recipe, on absolute in-image paths: `*` and `?`
 * stay inside one path segment, `**` spans any number of segments, `[...]`
 * is a character class (`[!...]` negated). A glob that matches a directory
 * keeps everything under it.
 */
export function globToRegExp(glob: string): RegExp {
  let g = glob.trim().replace(/\/+$/, "");
  if (!g.startsWith("/")) g = `/${g}`;
  let re = "";
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === "*") {
      if (g[i + 1] === "*") {
        // "/**/" may match a single "/"; "**" elsewhere matches anything.
        if (g[i - 1] === "/" && g[i + 2] === "/") {
          re = re.slice(0, -1) + "(?:/.*)?/";
          i += 2;
        } else {
          re += ".*";
          i += 1;
        }
      } else re += "[^/]*";
    } else if (c === "?") {
      re += "[^/]";
    } else if (c === "[") {
      const end = g.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        let cls = g.slice(i + 1, end);
        if (cls.startsWith("!")) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else {
      re += c.replace(/[.+^${}()|\\]/g, "\\$&");
    }
  }
  return new RegExp(`^${re}$`);
}

/** A filter for in-image paths ("/usr/bin/x"): no globs keep everything. */
export function pathFilter(globs: string[] | undefined): (path: string) => boolean {
  if (!globs?.length) return () => true;
  const res = globs.map(globToRegExp);
  return (path: string) => {
    // The path itself or any ancestor matching keeps it.
    for (let p = path; p.length > 1; p = p.slice(0, Math.max(1, p.lastIndexOf("/")))) {
      if (res.some((r) => r.test(p))) return true;
    }
    return false;
  };
}
