import { access } from "node:fs/promises";
import { isAbsolute, join, normalize, relative } from "node:path";
import type { Diagnostic } from "../core/errors.js";
import { parseMode } from "./mode.js";
import type { Package } from "./project.js";
import type { Recipe } from "./schema.js";
import { locate } from "./yaml.js";

/** Rules the schema cannot express: exactly-one-of fields, paths that must stay inside their folder. */
export async function checkRecipe(pkg: Package, projectRoot: string): Promise<Diagnostic[]> {
  const out: Diagnostic[] = [];
  // Runs on the raw data too when the schema found problems, so every problem is reported in one go:
  // hence the defensive shape checks below.
  const r = sanitize(pkg.recipe);
  const at = (path: (string | number)[]) => locate(pkg.file, path);
  if (r.kind === "files") {
    for (const [i, f] of r.files.entries()) {
      const given = (["source", "contents", "directory", "symlink", "device"] as const).filter((k) => f[k] !== undefined && f[k] !== false);
      if (given.length !== 1) {
        out.push({
          code: given.length ? "E_BAD_VALUE" : "E_MISSING_FIELD",
          message: given.length ? `files[${i}] has ${given.join(" and ")}; give exactly one` : `files[${i}] needs one of: source, contents, directory, symlink, device`,
          location: at(["files", i]),
        });
      }
      out.push(...checkImagePath(f.path, () => at(["files", i, "path"])));
      if (f.source !== undefined) {
        const d = checkLocalPath(pkg, projectRoot, f.source, () => at(["files", i, "source"]));
        if (d) out.push(d);
        else if (!f.optional && !(await exists(join(pkg.dir, f.source)))) {
          out.push({ code: "E_SOURCE_MISSING", message: `files[${i}].source '${f.source}' does not exist in ${relative(projectRoot, pkg.dir)}/`, location: at(["files", i, "source"]), hint: "fix the path, or add optional: true" });
        }
      }
    }
  } else if (r.kind === "script") {
    for (const [i, s] of (r.sources ?? []).entries()) {
      if ((s.path === undefined) === (s.url === undefined)) {
        out.push({ code: "E_BAD_VALUE", message: `sources[${i}] needs exactly one of: path, url`, location: at(["sources", i]) });
        continue;
      }
      if (s.url !== undefined && s.sha256 === undefined) {
        out.push({ code: "E_MISSING_FIELD", message: `sources[${i}] has a url but no sha256`, location: at(["sources", i]), hint: "every download is pinned by its sha256; add sha256: <64 hex digits>" });
      }
      if (s.url !== undefined && !/^(https?|file):\/\//.test(s.url)) {
        out.push({ code: "E_BAD_VALUE", message: `sources[${i}].url must be http://, https:// or file://`, location: at(["sources", i, "url"]) });
      }
      if (s.path !== undefined) {
        const d = checkLocalPath(pkg, projectRoot, s.path, () => at(["sources", i, "path"]));
        if (d) out.push(d);
        else if (!(await exists(join(pkg.dir, s.path)))) {
          out.push({ code: "E_SOURCE_MISSING", message: `sources[${i}].path '${s.path}' does not exist`, location: at(["sources", i, "path"]) });
        }
      }
      if (s.dest !== undefined && (isAbsolute(s.dest) || normalize(s.dest).startsWith(".."))) {
        out.push({ code: "E_PATH_ESCAPE", message: `sources[${i}].dest '${s.dest}' must be a relative path inside $SRCDIR`, location: at(["sources", i, "dest"]) });
      }
    }
    for (const [i, o] of (r.ownership ?? []).entries()) out.push(...checkImagePath(o.path, () => at(["ownership", i, "path"])));
  }
  const modes: [(string | number)[], string | number | undefined][] =
    r.kind === "files" ? r.files.map((f, i) => [["files", i, "mode"], f.mode]) : r.kind === "script" ? (r.ownership ?? []).map((o, i) => [["ownership", i, "mode"], o.mode]) : [];
  for (const [path, m] of modes) {
    if (m === undefined) continue;
    try {
      parseMode(m);
    } catch {
      out.push({ code: "E_BAD_VALUE", message: `mode ${JSON.stringify(m)} is not an octal mode`, location: at(path), hint: 'write it as a string such as "0644" or "0755"' });
    }
  }
  for (const [i, d] of (r.depends ?? []).entries()) {
    if (d === pkg.name) out.push({ code: "E_CYCLE", message: `package '${pkg.name}' depends on itself`, location: at(["depends", i]) });
  }
  return out;
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);
const strOrUndef = (v: unknown) => (typeof v === "string" ? v : undefined);

/** Keep only the parts of a possibly invalid recipe whose shape the rules can read. */
function sanitize(raw: unknown): Recipe {
  const r = isObj(raw) ? raw : {};
  const list = (v: unknown) => (Array.isArray(v) ? v.map((x) => (isObj(x) ? x : {})) : []);
  const mode = (v: unknown) => (typeof v === "string" || typeof v === "number" ? v : undefined);
  const depends = Array.isArray(r.depends) ? r.depends.filter((d): d is string => typeof d === "string") : [];
  if (r.kind === "script") {
    return {
      kind: "script",
      script: "",
      depends,
      sources: list(r.sources).map((s) => ({ path: strOrUndef(s.path), url: strOrUndef(s.url), sha256: s.sha256 === undefined ? undefined : String(s.sha256), dest: strOrUndef(s.dest) })),
      ownership: list(r.ownership).map((o) => ({ path: strOrUndef(o.path) ?? "/", mode: mode(o.mode) })),
    };
  }
  return {
    kind: "files",
    depends,
    files: list(r.files).map((f) => ({
      path: strOrUndef(f.path) ?? "/",
      source: strOrUndef(f.source),
      contents: strOrUndef(f.contents),
      directory: f.directory === true ? true : undefined,
      symlink: strOrUndef(f.symlink),
      device: isObj(f.device) ? { type: "char" as const } : undefined,
      optional: f.optional === true ? true : undefined,
      mode: mode(f.mode),
    })),
  };
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(() => true, () => false);
}

/** Locations are computed only for problems: finding one needs the YAML parse, which a cached config skips. */
type Where = () => Diagnostic["location"];

function checkImagePath(p: string, where: Where): Diagnostic[] {
  if (p.split("/").includes("..")) return [{ code: "E_PATH_ESCAPE", message: `in-image path '${p}' contains '..'`, location: where() }];
  return [];
}

/** A recipe's local path must stay inside the project (packages may share files within it). */
function checkLocalPath(pkg: Package, projectRoot: string, p: string, where: Where): Diagnostic | undefined {
  const rel = relative(projectRoot, join(pkg.dir, p));
  if (isAbsolute(p) || rel.startsWith("..")) {
    return { code: "E_PATH_ESCAPE", message: `'${p}' is outside the project`, location: where(), hint: "sources must live inside the project folder" };
  }
  return undefined;
}
