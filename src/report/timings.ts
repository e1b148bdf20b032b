import { performance } from "node:perf_hooks";
import type { EventBus, StagePart } from "../core/events.js";
import { table } from "../cli/output.js";
import { seconds } from "./style.js";

export interface StageTiming {
  target: string;
  /** built, cached (by key), remote (pulled from the remote cache) or failed */
  status: "built" | "cached" | "remote" | "failed";
  ms: number;
  /** Where a built stage's time went, when it says (an image tar: layers, tar). */
  parts?: StagePart[];
}

export interface TimingsReport {
  /** Wall time from the start of the process to the end of the command. */
  totalMs: number;
  /** Phases of the command itself, in order: start-up (node and kiln's modules), load (project), plan, … */
  phases: { name: string; ms: number }[];
  /** Every stage (package build, rootfs.tar, each image) in the order they finished. */
  stages: StageTiming[];
}

/**
 * Where the time of a build went (kiln build --timings): phases marked by the
 * command, stages from the build's own `done`/`fail` events, so the figures
 * are the same ones the --json events carry.
 */
export class Timings {
  private readonly phases: { name: string; ms: number }[] = [];
  private readonly stages: StageTiming[] = [];
  private last = 0;
  private readonly off: () => void;

  constructor(bus: EventBus) {
    // performance.now() counts from the start of the process: the first phase is node + kiln's start-up.
    this.mark("start-up");
    this.off = bus.on((ev) => {
      if (ev.type === "done") this.stages.push({ target: ev.target, status: ev.remote ? "remote" : ev.cached ? "cached" : "built", ms: ev.ms, ...(ev.parts && { parts: ev.parts }) });
      if (ev.type === "fail") this.stages.push({ target: ev.target, status: "failed", ms: 0 });
    });
  }

  /** The phase that ends now. */
  mark(name: string): void {
    const now = performance.now();
    this.phases.push({ name, ms: Math.round(now - this.last) });
    this.last = now;
  }

  finish(): TimingsReport {
    this.off();
    return { totalMs: Math.round(performance.now()), phases: this.phases, stages: this.stages };
  }
}

/** "418 MB, 1.8 GB/s": a size and the speed it was written at. */
function mbs(bytes: number, ms: number): string {
  const rate = bytes / Math.max(ms, 1) / 1000; // MB/s
  return `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB, ${rate >= 1000 ? `${(rate / 1000).toFixed(1)} GB/s` : `${rate.toFixed(0)} MB/s`}`;
}

/** The --timings table: phases, then the stages that ran (slowest first), then what the cache saved. */
export function renderTimings(t: TimingsReport): string {
  const ran = t.stages.filter((s) => s.status !== "cached").sort((a, b) => b.ms - a.ms);
  const cached = t.stages.filter((s) => s.status === "cached");
  const rows: string[][] = [["PHASE / STAGE", "STATUS", "TIME"]];
  for (const p of t.phases) rows.push([p.name, "", seconds(p.ms)]);
  for (const s of ran) {
    rows.push([`  ${s.target}`, s.status, seconds(s.ms)]);
    for (const p of s.parts ?? []) rows.push([`    ${p.name}${p.bytes !== undefined ? ` (${mbs(p.bytes, p.ms)})` : ""}`, "", seconds(p.ms)]);
  }
  if (cached.length) rows.push([`  ${cached.length} stage${cached.length > 1 ? "s" : ""} reused by key`, "cached", seconds(cached.reduce((n, s) => n + s.ms, 0))]);
  rows.push(["total (wall, from process start)", "", seconds(t.totalMs)]);
  return `timings:\n${table(rows)}`;
}
