import type { z } from "zod";
import type { Diagnostic } from "../core/errors.js";
import { didYouMean } from "./suggest.js";
import { locate, type YamlFile, type YamlPath } from "./yaml.js";

type AnySchema = z.ZodType;
interface Def {
  type: string;
  shape?: Record<string, AnySchema>;
  element?: AnySchema;
  innerType?: AnySchema;
  options?: AnySchema[];
  discriminator?: string;
  valueType?: AnySchema;
}
const defOf = (s: AnySchema): Def => (s as unknown as { def: Def }).def;

/** Follow a path through a schema (and the data, to pick the matching union branch). */
function schemaAt(schema: AnySchema, data: unknown, path: YamlPath): AnySchema | undefined {
  let s: AnySchema | undefined = schema;
  let d: unknown = data;
  for (let i = 0; i <= path.length && s; i++) {
    let def = defOf(s);
    while (def.type === "optional" || def.type === "default" || def.type === "nullable") {
      s = def.innerType!;
      def = defOf(s);
    }
    if (def.type === "union" && def.discriminator && d && typeof d === "object") {
      const want = (d as Record<string, unknown>)[def.discriminator];
      s = def.options!.find((o) => {
        const lit = defOf(o).shape?.[def.discriminator!];
        return lit && (defOf(lit) as unknown as { values: unknown[] }).values?.includes(want);
      });
      if (!s) return undefined;
      def = defOf(s);
    }
    if (i === path.length) return s;
    const seg = path[i]!;
    if (def.type === "object") s = def.shape![String(seg)];
    else if (def.type === "array") s = def.element;
    else if (def.type === "record") s = def.valueType;
    else return undefined;
    d = d && typeof d === "object" ? (d as Record<string, unknown>)[seg as string] : undefined;
  }
  return s;
}

function knownKeys(schema: AnySchema, data: unknown, path: YamlPath): string[] {
  const s = schemaAt(schema, data, path);
  const shape = s ? defOf(s).shape : undefined;
  return shape ? Object.keys(shape) : [];
}

function valueAt(data: unknown, path: YamlPath): unknown {
  let d = data;
  for (const seg of path) {
    if (!d || typeof d !== "object") return undefined;
    d = (d as Record<string, unknown>)[seg as string];
  }
  return d;
}

function describePath(path: YamlPath): string {
  return path.length ? path.map((p) => (typeof p === "number" ? `[${p}]` : p)).join(".").replace(/\.\[/g, "[") : "(top level)";
}

/** Validate parsed YAML against a schema; every issue becomes a diagnostic with file:line:col. */
export function validate<T>(schema: z.ZodType<T>, file: YamlFile): { value?: T; diagnostics: Diagnostic[] } {
  const res = schema.safeParse(file.data);
  if (res.success) return { value: res.data, diagnostics: [] };
  const diagnostics: Diagnostic[] = [];
  for (const issue of res.error.issues) diagnostics.push(...toDiagnostics(schema, file, issue));
  return { diagnostics };
}

function toDiagnostics(schema: AnySchema, file: YamlFile, issue: z.core.$ZodIssue): Diagnostic[] {
  const path = issue.path as YamlPath;
  const where = describePath(path);
  if (issue.code === "unrecognized_keys") {
    const known = knownKeys(schema, file.data, path);
    return issue.keys.map((k) => ({
      code: "E_UNKNOWN_KEY" as const,
      message: `unknown key '${k}' in ${where}`,
      location: locate(file, [...path, k], { key: true }),
      hint: didYouMean(k, known) ?? (known.length ? `known keys: ${known.join(", ")}` : undefined),
    }));
  }
  const value = valueAt(file.data, path);
  if (issue.code === "invalid_type" && value === undefined) {
    return [{ code: "E_MISSING_FIELD", message: `missing required field '${String(path[path.length - 1])}' in ${describePath(path.slice(0, -1))}`, location: locate(file, path) }];
  }
  if (issue.code === "invalid_union" && "discriminator" in issue && issue.discriminator) {
    const options = (issue as unknown as { options: unknown[] }).options.map(String);
    if (value === undefined) {
      return [{ code: "E_MISSING_FIELD", message: `missing required field '${issue.discriminator}' (one of: ${options.join(", ")})`, location: locate(file, path.slice(0, -1)) }];
    }
    return [{
      code: "E_BAD_VALUE",
      message: `${where} is '${String(value)}', expected one of: ${options.join(", ")}`,
      location: locate(file, path),
      hint: didYouMean(String(value), options),
    }];
  }
  if (issue.code === "invalid_value") {
    const options = issue.values.map(String);
    return [{ code: "E_BAD_VALUE", message: `${where} is '${String(value)}', expected one of: ${options.join(", ")}`, location: locate(file, path), hint: didYouMean(String(value), options) }];
  }
  if (issue.code === "invalid_type") {
    return [{ code: "E_WRONG_TYPE", message: `${where}: expected ${issue.expected}, got ${describeValue(value)}`, location: locate(file, path) }];
  }
  // A format error's message already says what is expected (the schema's regex messages); others get the field's description.
  const description = issue.code === "invalid_format" ? undefined : schemaAt(schema, file.data, path)?.description;
  return [{
    code: issue.code === "invalid_format" ? "E_BAD_VALUE" : "E_WRONG_TYPE",
    message: `${where}: ${issue.message}`,
    location: locate(file, path),
    hint: description ? `expected ${description}` : undefined,
  }];
}

function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return `${typeof v} ${JSON.stringify(v)}`;
}
