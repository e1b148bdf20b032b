import { CODES, type Code, ExitCode } from "./codes.js";

/** A place in a file; line and col are 1-based. */
export interface Location {
  file: string;
  line?: number;
  col?: number;
}

/** One problem found while checking input; config analysis returns many of these at once. */
export interface Diagnostic {
  code: Code;
  message: string;
  location?: Location;
  hint?: string;
}

export interface KilnErrorOptions {
  hint?: string;
  location?: Location;
  cause?: unknown;
  /** Extra lines shown under the message (a log tail, a list of diagnostics). */
  details?: string[];
  diagnostics?: Diagnostic[];
  /** For failed host commands: what was run, so the user can copy it. */
  command?: string;
  exitCode?: number | null;
}

/** The one error type kiln throws at users: a stable code, a message for people, where and what to do. */
export class KilnError extends Error {
  readonly code: Code;
  readonly hint?: string;
  readonly location?: Location;
  readonly details: string[];
  readonly diagnostics: Diagnostic[];
  readonly command?: string;
  readonly exitCode?: number | null;

  constructor(code: Code, message: string, opts: KilnErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "KilnError";
    this.code = code;
    this.hint = opts.hint;
    this.location = opts.location;
    this.details = opts.details ?? [];
    this.diagnostics = opts.diagnostics ?? [];
    this.command = opts.command;
    this.exitCode = opts.exitCode;
  }

  get exit(): ExitCode {
    return CODES[this.code].exit;
  }

  static fromDiagnostics(diags: Diagnostic[]): KilnError {
    if (diags.length === 1) {
      const d = diags[0]!;
      return new KilnError(d.code, d.message, { hint: d.hint, location: d.location, diagnostics: diags });
    }
    return new KilnError("E_CONFIG", `${diags.length} problems found`, { diagnostics: diags });
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      hint: this.hint,
      location: this.location,
      details: this.details.length ? this.details : undefined,
      diagnostics: this.diagnostics.length > 1 ? this.diagnostics : undefined,
      command: this.command,
      exitCode: this.exitCode,
    };
  }
}

export function formatLocation(loc?: Location): string {
  if (!loc) return "";
  let s = loc.file;
  if (loc.line !== undefined) s += `:${loc.line}`;
  if (loc.line !== undefined && loc.col !== undefined) s += `:${loc.col}`;
  return s;
}

/** Wrap anything thrown into a KilnError so every exit path prints a code. */
export function asKilnError(err: unknown): KilnError {
  if (err instanceof KilnError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e && (e.code === "ENOSPC" || e.code === "EACCES" || e.code === "EROFS")) {
    return new KilnError("E_STORE_IO", `${e.message}`, { cause: err });
  }
  return new KilnError("E_INTERNAL", e?.stack ?? String(err), { cause: err });
}
