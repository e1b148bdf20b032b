#!/usr/bin/env node
// dist/bundle/ is dist/ bundled by scripts/bundle.mjs (faster start-up); both come from `npm run build`.
import { main } from "../dist/bundle/main.js";

process.exitCode = await main(process.argv);
