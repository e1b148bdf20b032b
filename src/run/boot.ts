import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { KilnError } from "../core/errors.js";
import type { EventBus } from "../core/events.js";
import { runSignal } from "../core/interrupt.js";
import { qemuCommand, type QemuOptions } from "./qemu.js";

export interface BootOptions extends QemuOptions {
  /** Stop with success as soon as the console matches. */
  expect?: RegExp;
  timeoutSec: number;
  /** Copy the console to our stdout (off with --json/--quiet). */
  echo: boolean;
  bus: EventBus;
}

export interface BootResult {
  matched: boolean;
  seconds: number;
  accel: string;
  log: string;
  exitCode: number | null;
}

/**
 * Boot an image in QEMU with the serial console on a pipe: it is copied to the
 * terminal and a log file, and matched against `expect`. The VM is stopped on
 * a match, on timeout and on Ctrl-C; its disks are not changed (snapshot).
 */
export async function boot(o: BootOptions): Promise<BootResult> {
  await mkdir(dirname(o.serialLog), { recursive: true });
  await mkdir(o.workDir, { recursive: true });
  const { cmd, args, accel } = await qemuCommand(o);
  o.bus.emit({ type: "info", message: `booting ${o.image} (${o.arch}, ${accel}, ${o.memMiB} MiB) — console log: ${o.serialLog}` });
  o.bus.emit({ type: "debug", message: `$ ${cmd} ${args.join(" ")}` });
  const log = createWriteStream(o.serialLog);
  const t0 = Date.now();
  let recent = "";
  let seen = "";
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
          new KilnError("E_BOOT_TIMEOUT", `no ${o.expect ? `match for /${o.expect.source}/` : "end of the boot"} within ${o.timeoutSec} s`, {
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
      if (o.expect) {
        seen = (seen + s).slice(-65536);
        if (o.expect.test(seen)) {
          const seconds = (Date.now() - t0) / 1000;
          finish(() => resolve({ matched: true, seconds, accel, log: o.serialLog, exitCode: null }));
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
    child.on("close", (code) => {
      const seconds = (Date.now() - t0) / 1000;
      if (o.expect) {
        finish(() => reject(new KilnError("E_BOOT_EXITED", `the virtual machine stopped (exit ${code}) before /${o.expect!.source}/ appeared`, { details: tail(), hint: `the whole console is in ${o.serialLog}` })));
      } else {
        finish(() => resolve({ matched: false, seconds, accel, log: o.serialLog, exitCode: code }));
      }
    });
  });
}
