import type { Code } from "../../core/codes.js";
import { KilnError, type Location } from "../../core/errors.js";

/** Where the expression text starts, for error locations (line and col are 1-based, default 1:1). */
export interface YqSource {
  file: string;
  line?: number;
  col?: number;
}

const HINTS: Partial<Record<Code, string>> = {
  E_YQ_UNSUPPORTED: "docs/modifiers.md lists the operators kiln implements.",
};

/** The text of one expression plus where it lives, so any offset can be turned into file:line:col. */
export class SourceText {
  constructor(
    readonly text: string,
    readonly source: YqSource,
  ) {}

  location(offset: number): Location {
    const startLine = this.source.line ?? 1;
    const startCol = this.source.col ?? 1;
    const at = Math.max(0, Math.min(offset, this.text.length));
    let line = 0;
    let lineStart = 0;
    for (let i = 0; i < at; i++) {
      if (this.text.charCodeAt(i) === 10) {
        line++;
        lineStart = i + 1;
      }
    }
    const col = line === 0 ? startCol + at : at - lineStart + 1;
    return { file: this.source.file, line: startLine + line, col };
  }

  error(code: Code, offset: number, message: string, hint?: string): KilnError {
    return new KilnError(code, message, { location: this.location(offset), hint: hint ?? HINTS[code] });
  }
}
