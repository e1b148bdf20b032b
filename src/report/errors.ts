import { CODES } from "../core/codes.js";
import { formatLocation, type Diagnostic, type KilnError } from "../core/errors.js";
import { type Paint } from "./style.js";

function diagLines(d: Diagnostic, p: Paint): string[] {
  const lines = [`${p.red(p.bold(`error[${d.code}]`))}: ${d.message}`];
  if (d.location) lines.push(`  ${p.dim("-->")} ${formatLocation(d.location)}`);
  if (d.hint) lines.push(`  ${p.dim("hint:")} ${d.hint}`);
  return lines;
}

/** Render an error for people: code, message, where, the command and output tail, what to do. */
export function formatError(err: KilnError, p: Paint): string {
  const out: string[] = [];
  if (err.diagnostics.length > 1) {
    for (const d of err.diagnostics) out.push(...diagLines(d, p), "");
    out.push(`${p.red(`${err.diagnostics.length} problems`)} (${err.code}: ${CODES[err.code].summary})`);
    return out.join("\n");
  }
  out.push(...diagLines({ code: err.code, message: err.message, location: err.location }, p));
  if (err.command) out.push(`  ${p.dim("command:")} ${err.command}${err.exitCode !== undefined && err.exitCode !== null ? `  ${p.dim(`(exit ${err.exitCode})`)}` : ""}`);
  for (const l of err.details) out.push(`  ${p.dim("|")} ${l}`);
  const hint = err.hint ?? (err.code === "E_INTERNAL" ? CODES.E_INTERNAL.fix : undefined);
  if (hint) out.push(`  ${p.dim("hint:")} ${hint}`);
  return out.join("\n");
}
