import { KilnError } from "./errors.js";
import { runSignal } from "./interrupt.js";
import { findTool } from "./tools.js";

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  input?: string | Uint8Array;
  /** Lines of output to show when the command fails. */
  tailLines?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Quote one argument so the printed command line can be pasted into a shell. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map(shellQuote).join(" ");
}

export function tail(text: string, lines: number): string[] {
  const all = text.replace(/\s+$/, "").split("\n");
  return all.slice(Math.max(0, all.length - lines));
}

/**
 * Run a host tool to completion. On failure the error carries the command to
 * copy, the exit code and the tail of its output (mkosi's log_process_failure).
 */
export async function run(tool: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const path = await findTool(tool);
  // execa costs ~130 ms to import; only runs that call a tool pay for it.
  const { execa } = await import("execa");
  const res = await execa(path, args, {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: opts.env === undefined,
    input: opts.input,
    reject: false,
    cancelSignal: runSignal,
    forceKillAfterDelay: 2000,
    stripFinalNewline: false,
    encoding: "utf8",
  });
  if (res.isCanceled) throw new KilnError("E_INTERRUPTED", `interrupted while running ${tool}`);
  if (res.exitCode !== 0 || res.failed) {
    const output = `${res.stderr}\n${res.stdout}`.trim();
    throw new KilnError("E_TOOL_FAILED", `${tool} failed with exit code ${res.exitCode ?? res.signal ?? "?"}`, {
      command: commandLine(tool, args),
      exitCode: res.exitCode ?? null,
      details: tail(output, opts.tailLines ?? 20),
    });
  }
  return { stdout: res.stdout, stderr: res.stderr };
}
