#!/usr/bin/env node
// Regenerate the shipped JSON Schemas and docs/errors.md from their single
// sources of truth (src/config/schema.ts, src/core/codes.ts). `npm test`
// checks that the committed files match.
import { writeFileSync } from "node:fs";
import { renderErrorsDoc, renderSchemas } from "../dist/config/generated.js";

for (const [name, text] of Object.entries(renderSchemas())) writeFileSync(new URL(`../schema/${name}`, import.meta.url), text);
writeFileSync(new URL("../docs/errors.md", import.meta.url), renderErrorsDoc());
console.log("wrote schema/*.schema.json and docs/errors.md");
