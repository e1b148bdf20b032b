/**
 * Validates an OCI runtime config.json against the OCI runtime-spec's own JSON
 * Schema (draft-04), vendored unchanged in test/fixtures/third_party/runtime-spec
 * (see the README there for the version and origin).
 *
 *   validateRuntimeConfig(config) -> []                  valid
 *   validateRuntimeConfig(config) -> ["/process/args: must be array", ...]
 */
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import AjvDraft04 from "ajv-draft-04";
import type { ErrorObject, SchemaObject, ValidateFunction } from "ajv-draft-04";

/** The folder holding the runtime-spec's schema/*.json files. */
export const RUNTIME_SPEC_DIR = fileURLToPath(new URL("../fixtures/third_party/runtime-spec/", import.meta.url));

/**
 * The schemas refer to each other by relative file name ("defs.json#/definitions/uint32"),
 * so each one gets the draft-04 `id` BASE + its file name and every $ref resolves to a sibling.
 */
const BASE = "https://runtime-spec.invalid/schema/";
const ROOT = "config-schema.json";

let cached: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (cached) return cached;
  // ajv-draft-04 is CommonJS: under NodeNext its default import types as the module, whose
  // `default` is the Ajv class (module.exports.default === module.exports at run time).
  const ajv = new AjvDraft04.default({ allErrors: true, strict: false, validateFormats: false });
  for (const name of readdirSync(RUNTIME_SPEC_DIR).filter((f) => f.endsWith(".json")).sort()) {
    const schema = JSON.parse(readFileSync(join(RUNTIME_SPEC_DIR, name), "utf8")) as SchemaObject;
    ajv.addSchema({ ...schema, id: BASE + name });
  }
  const compiled = ajv.getSchema(BASE + ROOT);
  if (!compiled) throw new Error(`${ROOT} not found in ${RUNTIME_SPEC_DIR}`);
  cached = compiled;
  return compiled;
}

const escapePointer = (s: string) => s.replace(/~/g, "~0").replace(/\//g, "~1");

function describe(e: ErrorObject): string {
  let pointer = e.instancePath;
  // a missing member is reported on its parent; point at the member itself
  if (e.keyword === "required") pointer += `/${escapePointer(String((e.params as { missingProperty: string }).missingProperty))}`;
  let detail = e.message ?? e.keyword;
  if (e.keyword === "enum") detail += `: ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`;
  return `${pointer || "(root)"}: ${detail}`;
}

/** Problems with `config` as an OCI runtime config.json: [] when it is valid, else one line per problem, each starting with its JSON pointer. */
export function validateRuntimeConfig(config: unknown): string[] {
  const validate = validator();
  if (validate(config)) return [];
  return [...new Set((validate.errors ?? []).map(describe))];
}
