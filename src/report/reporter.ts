import type { EventBus, KilnEvent } from "../core/events.js";
import { colorsEnabled, paint, seconds } from "./style.js";

export type ReportMode = "tty" | "plain" | "json" | "quiet";

export function chooseMode(opts: { json?: boolean; quiet?: boolean }): ReportMode {
  if (opts.json) return "json";
  if (opts.quiet) return "quiet";
  return process.stderr.isTTY && process.env.CI === undefined ? "tty" : "plain";
}

/**
 * Render core events. json: one object per line on stdout (for machines);
 * plain: one line per finished step on stderr (CI logs); tty: the same lines
 * plus a live status line of what runs now; quiet: warnings only.
 */
export function attachReporter(bus: EventBus, mode: ReportMode, verbose: boolean): () => void {
  if (mode === "json") return bus.on((ev) => process.stdout.write(JSON.stringify(ev) + "\n"));
  const err = process.stderr;
  const p = paint(colorsEnabled(err));
  const running = new Map<string, number>();
  let done = 0;
  let cached = 0;
  let total = 0;
  let statusShown = false;
  const clear = () => {
    if (statusShown) err.write("\r\x1b[K");
    statusShown = false;
  };
  const status = () => {
    if (mode !== "tty" || !running.size) return;
    const now = Date.now();
    const names = [...running.entries()].map(([t, s]) => `${t} ${p.dim(seconds(now - s))}`).join(", ");
    const line = `[${done}/${total}] ${cached ? `${cached} cached, ` : ""}building ${names}`;
    err.write(`\r\x1b[K${line.slice(0, (err.columns ?? 120) - 1)}`);
    statusShown = true;
  };
  const print = (s: string) => {
    clear();
    err.write(s + "\n");
    status();
  };
  const timer = mode === "tty" ? setInterval(status, 200) : undefined;
  timer?.unref();
  const off = bus.on((ev: KilnEvent) => {
    switch (ev.type) {
      case "plan":
        total = ev.total;
        if (mode !== "quiet" && ev.toBuild) print(p.dim(`${ev.total} targets: ${ev.toBuild} to build, ${ev.cached} cached`));
        break;
      case "start":
        running.set(ev.target, Date.now());
        if (mode === "plain" && verbose) print(`start  ${ev.target}`);
        status();
        break;
      case "done":
        running.delete(ev.target);
        done++;
        if (ev.cached) cached++;
        if (mode !== "quiet" && (!ev.cached || verbose)) print(`${ev.cached ? p.dim("cached") : p.green("built ")} ${ev.target} ${p.dim(seconds(ev.ms))}`);
        break;
      case "fail":
        running.delete(ev.target);
        done++;
        print(`${p.red("FAILED")} ${ev.target}: ${ev.code} ${ev.message}${ev.log ? p.dim(` (log: ${ev.log})`) : ""}`);
        break;
      case "skip":
        done++;
        if (mode !== "quiet") print(`${p.yellow("skip  ")} ${ev.target}: ${ev.reason}`);
        break;
      case "wait":
        if (mode !== "quiet") print(p.dim(`wait   ${ev.target}: ${ev.reason}`));
        break;
      case "warn":
        print(`${p.yellow("warning:")} ${ev.message}`);
        break;
      case "info":
        if (mode !== "quiet") print(ev.message);
        break;
      case "debug":
        if (verbose) print(p.dim(ev.message));
        break;
      case "summary":
        clear();
        if (mode !== "quiet") {
          const parts = [`${ev.built} built`, `${ev.cached} cached`];
          if (ev.failed) parts.push(p.red(`${ev.failed} failed`));
          if (ev.skipped) parts.push(p.yellow(`${ev.skipped} skipped`));
          print(`${parts.join(", ")} in ${seconds(ev.ms)}`);
        }
        break;
    }
  });
  return () => {
    off();
    if (timer) clearInterval(timer);
    clear();
  };
}
