#!/usr/bin/env node
// The README's main job: build the example OS (examples/kiln-os) and boot it in QEMU until its
// service says KILN-SERVICE-OK. Installs the Debian packages it needs first (scripts/host-deps.mjs).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("..", import.meta.url));
const kiln = (args, opts = {}) => spawnSync(process.execPath, [`${repo}bin/kiln.js`, "-C", `${repo}examples/kiln-os`, ...args], { stdio: opts.capture ? ["ignore", "inherit", "pipe"] : "inherit", encoding: "utf8" });
const step = (what) => console.error(`\n== ${what}`);

step("host packages");
if (spawnSync(process.execPath, [`${repo}scripts/host-deps.mjs`, "example"], { stdio: "inherit" }).status !== 0) process.exit(1);

step("kiln build live (Debian packages pinned in examples/kiln-os/kiln.lock)");
let b = kiln(["build", "live"], { capture: true });
if (b.status !== 0 && /E_DEBIAN_GONE/.test(b.stderr ?? "")) {
  // A Debian point release removed a pinned version from the mirror: pin what it has now.
  process.stderr.write(b.stderr);
  step("the mirror no longer has a pinned version: kiln lock --update, then build again");
  if (kiln(["lock", "--update"]).status !== 0) process.exit(1);
  b = kiln(["build", "live"], { capture: true });
}
if (b.status !== 0) {
  process.stderr.write(b.stderr ?? "");
  process.exit(b.status ?? 1);
}
process.stderr.write(b.stderr ?? "");

step("kiln run live: boot it in QEMU (UEFI, TCG on most machines: about 15-20 s)");
const r = kiln(["run", "live", "--expect", "KILN-SERVICE-OK", "--timeout", "180"]);
process.exit(r.status ?? 1);
