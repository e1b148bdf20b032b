import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { KilnError } from "../core/errors.js";
import type { EventBus } from "../core/events.js";
import { runSignal } from "../core/interrupt.js";
import { qemuCommand, type QemuOptions } from "./qemu.js";

export interface BootOptions extends Omit<QemuOptions, "workDir"> {
  /** Stop with success as soon as the console matches (with untilExit: once it has matched and the VM has stopped). */
  expect?: RegExp;
  /** After the match, let the VM run until it powers off by itself (an installer that writes, then powers off). */
  untilExit?: boolean;
  timeoutSec: number;
  /** Copy the console to our stdout (off with --json/--quiet). */
  echo: boolean;
  bus: EventBus;
}

export interface BootResult {
  matched: boolean;
  /** From QEMU's start to the match, or to the VM's exit without --expect / with untilExit. */
  seconds: number;
  /** When the console matched (untilExit: the match, not the exit). */
  matchSeconds?: number;
  accel: string;
  log: string;
  exitCode: number | null;
}

/**
 * Boot an image in QEMU with the serial console on a pipe: it is copied to the
 * terminal and a log file, and matched against `expect`. The VM is stopped on
 * a match (unless untilExit), on timeout and on Ctrl-C; the boot image is not
 * changed (snapshot), extra disks are.
 *
 * Outcomes: a match → resolved, matched (untilExit: the match, then the VM's
 * own exit with status 0); no --expect and the VM stops with status 0 →
 * resolved, not matched; the VM stops before the match → E_BOOT_EXITED;
 * QEMU fails (non-zero status) → E_TOOL_FAILED; a kernel panic followed by the
 * VM's stop (-no-reboot turns the panic's reboot into an exit) → E_BOOT_EXITED;
 * no match (or no exit) in time → E_BOOT_TIMEOUT.
 */
export async function boot(o: BootOptions): Promise<BootResult> {
  await mkdir(dirname(o.serialLog), { recursive: true });
  // A private folder per run for the firmware's variable store: runs at the same time do not share it.
  const workDir = await mkdtemp(join(tmpdir(), "kiln-run-"));
  try {
    return await bootIn(o, workDir);
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

async function bootIn(o: BootOptions, workDir: string): Promise<BootResult> {
  const { cmd, args, accel } = await qemuCommand({ ...o, workDir });
  o.bus.emit({ type: "info", message: `booting ${o.image} (${o.arch}, ${accel}, ${o.memMiB} MiB) — console log: ${o.serialLog}` });
  o.bus.emit({ type: "debug", message: `$ ${cmd} ${args.join(" ")}` });
  const log = createWriteStream(o.serialLog);
  const t0 = Date.now();
  let recent = "";
  let seen = "";
  let matchSeconds: number | undefined;
  let panic = "";
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  const stop = () => {
    try {
      if (child.pid) process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  return new Promise<BootResult>((resolve, reject) => {
    let done = false;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      runSignal.removeEventListener("abort", onAbort);
      stop();
      log.end(fn);
    };
    const tail = () => recent.replace(/\r/g, "").split("\n").slice(-15);
    const onAbort = () => finish(() => reject(new KilnError("E_INTERRUPTED", "interrupted; the virtual machine was stopped")));
    runSignal.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => {
      finish(() =>
        reject(
          new KilnError("E_BOOT_TIMEOUT", matchSeconds !== undefined ? `/${o.expect!.source}/ matched after ${matchSeconds.toFixed(1)} s, but the virtual machine did not stop within ${o.timeoutSec} s` : `no ${o.expect ? `match for /${o.expect.source}/` : "end of the boot"} within ${o.timeoutSec} s`, {
            details: tail(),
            hint: `the whole console is in ${o.serialLog}`,
          }),
        ),
      );
    }, o.timeoutSec * 1000);
    const onData = (b: Buffer) => {
      if (done) return;
      log.write(b);
      if (o.echo) process.stdout.write(b);
      const s = b.toString("utf8");
      recent = (recent + s).slice(-8192);
      // the panic's line, completed as more output comes
      if (!panic) {
        const i = recent.indexOf("Kernel panic - not syncing");
        if (i >= 0) panic = recent.slice(i, i + 300);
      } else if (!/[\r\n]/.test(panic)) panic = (panic + s).slice(0, 300);
      if (o.expect && matchSeconds === undefined) {
        seen = (seen + s).slice(-65536);
        if (o.expect.test(seen)) {
          matchSeconds = (Date.now() - t0) / 1000;
          if (!o.untilExit) finish(() => resolve({ matched: true, seconds: matchSeconds!, matchSeconds, accel, log: o.serialLog, exitCode: null }));
        }
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (b: Buffer) => {
      if (done) return;
      log.write(b);
      recent = (recent + b.toString("utf8")).slice(-8192);
    });
    child.on("error", (err) => finish(() => reject(err)));
    child.on("close", (code, signal) => {
      const seconds = (Date.now() - t0) / 1000;
      const hint = `the whole console is in ${o.serialLog}`;
      if (code !== 0) {
        const status = code === null ? `signal ${signal}` : `status ${code}`;
        finish(() => reject(new KilnError("E_TOOL_FAILED", `${cmd} stopped with ${status} after ${seconds.toFixed(1)} s`, { details: tail(), hint })));
      } else if (panic) {
        finish(() => reject(new KilnError("E_BOOT_EXITED", `the kernel panicked and the virtual machine stopped (${panic.split(/[\r\n]/)[0]!.trim()})`, { details: tail(), hint })));
      } else if (o.expect && matchSeconds === undefined) {
        finish(() => reject(new KilnError("E_BOOT_EXITED", `the virtual machine stopped after ${seconds.toFixed(1)} s before /${o.expect!.source}/ appeared`, { details: tail(), hint })));
      } else {
        finish(() => resolve({ matched: matchSeconds !== undefined, seconds, matchSeconds, accel, log: o.serialLog, exitCode: code }));
      }
    });
  });
}
