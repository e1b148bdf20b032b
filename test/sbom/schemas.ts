/**
 * Validates SBOMs against the official JSON Schemas, kept unchanged in
 * test/fixtures/third_party/{spdx,cyclonedx} (see the READMEs there):
 *
 *   validateSpdx(doc)      -> []   valid SPDX 2.3 (draft 2019-09 schema)
 *   validateCycloneDx(doc) -> ["/components/0/type: must be equal to one of the allowed values: [...]", ...]
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import Ajv2019Module from "ajv/dist/2019.js";
import AjvModule from "ajv";
import type { ErrorObject, SchemaObject, ValidateFunction } from "ajv";

const FIXTURES = fileURLToPath(new URL("../fixtures/third_party/", import.meta.url));
const load = (p: string) => JSON.parse(readFileSync(FIXTURES + p, "utf8")) as SchemaObject;

// Both are CommonJS: under NodeNext the default import types as the module, whose `default` is the class
// (module.exports.default === module.exports at run time), as with ajv-draft-04 in oci-runtime-schema.ts.
const Ajv2019 = Ajv2019Module.default;
const Ajv = AjvModule.default;

/** The formats the CycloneDX schema uses (ajv-formats is not a dependency): checked as RFC 3339 date-times and IRI references without spaces. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
function addFormats(ajv: { addFormat(name: string, f: RegExp | ((s: string) => boolean)): unknown }): void {
  ajv.addFormat("date-time", DATE_TIME);
  ajv.addFormat("iri-reference", (s) => !/\s/.test(s));
  ajv.addFormat("idn-email", /^[^\s@]+@[^\s@]+$/);
  ajv.addFormat("uri", /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/);
}

let spdx: ValidateFunction | undefined;
let cdx: ValidateFunction | undefined;

function describe(e: ErrorObject): string {
  let detail = e.message ?? e.keyword;
  if (e.keyword === "enum") detail += `: ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues).slice(0, 200)}`;
  if (e.keyword === "additionalProperties") detail += `: ${(e.params as { additionalProperty: string }).additionalProperty}`;
  return `${e.instancePath || "(root)"}: ${detail}`;
}

export function validateSpdx(doc: unknown): string[] {
  spdx ??= new Ajv2019({ allErrors: true, strict: false }).compile(load("spdx/spdx-schema.json"));
  const v = spdx;
  return v(doc) ? [] : (v.errors ?? []).map(describe);
}

export function validateCycloneDx(doc: unknown): string[] {
  if (!cdx) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    // bom-1.5 refers to its siblings by file name, relative to its $id: give them those ids (their own say *.schema.json)
    for (const name of ["spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json"]) ajv.addSchema({ ...load(`cyclonedx/${name}`), $id: `http://cyclonedx.org/schema/${name}` });
    cdx = ajv.compile(load("cyclonedx/bom-1.5.SNAPSHOT.schema.json"));
  }
  const v = cdx;
  return v(doc) ? [] : (v.errors ?? []).map(describe);
}

/** Checks the SPDX schema does not say: element ids unique and well formed, relationships between declared elements, LicenseRefs declared. */
export function spdxConsistency(doc: { SPDXID: string; packages?: { SPDXID: string; licenseDeclared?: string }[]; files?: { SPDXID: string }[]; relationships?: { spdxElementId: string; relatedSpdxElement: string }[]; hasExtractedLicensingInfos?: { licenseId: string }[] }): string[] {
  const problems: string[] = [];
  const ids = [doc.SPDXID, ...(doc.packages ?? []).map((p) => p.SPDXID), ...(doc.files ?? []).map((f) => f.SPDXID)];
  const seen = new Set<string>();
  for (const id of ids) {
    if (!/^SPDXRef-[A-Za-z0-9.-]+$/.test(id)) problems.push(`bad SPDXID ${id}`);
    if (seen.has(id)) problems.push(`duplicate SPDXID ${id}`);
    seen.add(id);
  }
  for (const r of doc.relationships ?? []) for (const id of [r.spdxElementId, r.relatedSpdxElement]) if (!seen.has(id)) problems.push(`relationship to undeclared ${id}`);
  const declared = new Set((doc.hasExtractedLicensingInfos ?? []).map((l) => l.licenseId));
  for (const p of doc.packages ?? []) for (const ref of p.licenseDeclared?.match(/LicenseRef-[A-Za-z0-9.-]+/g) ?? []) if (!declared.has(ref)) problems.push(`${p.SPDXID}: ${ref} not declared`);
  return problems;
}
