import { execa } from "execa";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll } from "vitest";

export const REPO = resolve(import.meta.dirname, "../..");
export const BIN = join(REPO, "bin", "kiln.js");

const made: string[] = [];
afterAll(async () => {
  if (process.env.KILN_TEST_KEEP) return;
  await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
});

/** A fresh temp folder, removed after the test file. */
export async function tempDir(label = "kiln-test"): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), `${label}-`));
  made.push(d);
  return d;
}

/** Write a small project (path → content) into a fresh folder (changesets' testdir idea). */
export async function writeProject(files: Record<string, string>, dir?: string): Promise<string> {
  const root = dir ?? (await tempDir("kiln-proj"));
  for (const [p, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, p)), { recursive: true });
    await writeFile(join(root, p), content);
  }
  return root;
}

export interface KilnRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the real CLI, as a user would. */
export async function kiln(args: string[], opts: { cwd?: string; store?: string; env?: Record<string, string> } = {}): Promise<KilnRun> {
  const res = await execa("node", [BIN, ...args], {
    cwd: opts.cwd,
    reject: false,
    env: { NO_COLOR: "1", CI: "1", ...(opts.store ? { KILN_STORE: opts.store } : {}), ...opts.env },
  });
  return { code: res.exitCode ?? -1, stdout: res.stdout, stderr: res.stderr };
}

/** Parse --json output: one object per line. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Which targets a --json build actually built (not cached). */
export function built(stdout: string): string[] {
  return jsonLines(stdout).filter((e) => e.type === "done" && e.cached === false).map((e) => e.target as string).sort();
}

export const KILN_YML = "name: t\narchs: [amd64]\nsourceDateEpoch: 1700000000\n";
