import { EventEmitter } from "node:events";

/**
 * What the core reports while it works. Reporters (TTY progress, plain lines,
 * --json) render these; the core never prints.
 */
export type KilnEvent =
  | { type: "plan"; total: number; toBuild: number; cached: number }
  | { type: "start"; target: string; key: string }
  /**
   * `remote`: the registry of the remote cache it was pulled from instead of being built (cached is true).
   * `parts`: where a built stage's ms went, in order (an image tar: its layers applied, then the tar written).
   */
  | { type: "done"; target: string; key: string; cached: boolean; ms: number; remote?: string; parts?: StagePart[] }
  | { type: "fail"; target: string; code: string; message: string; log?: string }
  | { type: "skip"; target: string; reason: string }
  | { type: "wait"; target: string; reason: string }
  | { type: "info"; message: string }
  | { type: "warn"; message: string }
  | { type: "debug"; message: string }
  | { type: "summary"; built: number; cached: number; failed: number; skipped: number; ms: number }
  /** kiln build --timings: where the time went (phases of the command, every stage with its status). */
  | { type: "timings"; totalMs: number; phases: { name: string; ms: number }[]; stages: { target: string; status: string; ms: number; parts?: StagePart[] }[] };

/** A part of a stage's time; `bytes` when the part wrote a file of that size (its speed is shown). */
export interface StagePart {
  name: string;
  ms: number;
  bytes?: number;
}

export class EventBus {
  private readonly emitter = new EventEmitter();

  emit(ev: KilnEvent): void {
    this.emitter.emit("event", ev);
  }

  on(fn: (ev: KilnEvent) => void): () => void {
    this.emitter.on("event", fn);
    return () => this.emitter.off("event", fn);
  }
}
