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

export interface GroupOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** A file descriptor to read standard input from (default: none). */
  stdin?: number;
  onOutput(chunk: Buffer): void;
}

/**
 * Run a command in its own process group with its output streamed to
 * `onOutput`; an interrupt kills the whole group (what the command started
 * too). Resolves the exit code (128 for a signal); rejects E_INTERRUPTED.
 */
export async function spawnGroup(cmd: string, args: string[], o: GroupOptions): Promise<number> {
  const { spawn } = await import("node:child_process");
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: o.env, cwd: o.cwd, detached: true, stdio: [o.stdin ?? "ignore", "pipe", "pipe"] });
    const kill = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    };
    runSignal.addEventListener("abort", kill, { once: true });
    child.stdout?.on("data", o.onOutput);
    child.stderr?.on("data", o.onOutput);
    child.on("error", (err) => {
      runSignal.removeEventListener("abort", kill);
      reject(err);
    });
    child.on("close", (code, signal) => {
      runSignal.removeEventListener("abort", kill);
      if (runSignal.aborted) reject(new KilnError("E_INTERRUPTED", `interrupted while running ${cmd}`));
      else resolve(code ?? (signal ? 128 : 1));
    });
  });
}
