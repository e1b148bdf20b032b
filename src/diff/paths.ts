import { globToRegExp } from "../debian/glob.js";

/** "./etc/hv", "etc/hv/", "/etc//hv" → "/etc/hv"; the root is "/". */
export function normPath(p: string): string {
  const parts = p.split("/").filter((s) => s && s !== ".");
  return `/${parts.join("/")}`;
}

/** A predicate for --ignore globs: a glob that matches a directory hides everything under it. */
export function ignorer(globs: string[]): (path: string) => boolean {
  const res = globs.map(globToRegExp);
  return (path) => {
    if (!res.length) return false;
    // the path itself or any of its parents
    for (let p = path; p && p !== "/"; p = p.slice(0, p.lastIndexOf("/")) || "/") {
      if (res.some((r) => r.test(p))) return true;
    }
    return false;
  };
}
