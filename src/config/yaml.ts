import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import type { Document, LineCounter, Node } from "yaml";
import type { Diagnostic, Location } from "../core/errors.js";

type YamlLib = typeof import("yaml");
const require = createRequire(import.meta.url);
let lib: YamlLib | undefined;
/**
 * The yaml library, loaded on first use (synchronously, so locate() can stay
 * sync): a no-op build whose config comes from the validated-config cache
 * never parses YAML and never pays for loading the parser.
 */
const Y = (): YamlLib => (lib ??= require("yaml") as YamlLib);

/** A YAML file that can say where every node came from (the parse is made on demand). */
export class YamlFile {
  private parsed?: { doc: Document.Parsed; lines: LineCounter };

  constructor(
    readonly path: string,
    /** Path as shown to users (relative to the project). */
    readonly display: string,
    readonly text: string,
    readonly data: unknown,
    parsed?: { doc: Document.Parsed; lines: LineCounter },
  ) {
    this.parsed = parsed;
  }

  get doc(): Document.Parsed {
    return this.node().doc;
  }

  get lines(): LineCounter {
    return this.node().lines;
  }

  private node() {
    this.parsed ??= parse(this.text).parsed;
    return this.parsed;
  }
}

export type YamlPath = readonly (string | number)[];

function parse(text: string) {
  const { LineCounter: LC, parseDocument } = Y();
  const lines = new LC();
  // uniqueKeys: a duplicated key is an error, not a silent override.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  return { parsed: { doc, lines } };
}

export async function readYaml(path: string, display: string): Promise<{ file?: YamlFile; diagnostics: Diagnostic[] }> {
  return parseYaml(await readFile(path, "utf8"), path, display);
}

export function parseYaml(text: string, path: string, display: string): { file?: YamlFile; diagnostics: Diagnostic[] } {
  const { parsed } = parse(text);
  const diagnostics: Diagnostic[] = parsed.doc.errors.map((e) => {
    const pos = parsed.lines.linePos(e.pos[0]);
    return {
      code: "E_YAML_SYNTAX",
      message: e.message.split("\n")[0] ?? e.message,
      location: { file: display, line: pos.line, col: pos.col },
    };
  });
  if (diagnostics.length) return { diagnostics };
  return { file: new YamlFile(path, display, text, parsed.doc.toJS() ?? {}, parsed), diagnostics };
}

/** YAML text for a plain value: block style, no line folding, key order kept. */
export function stringifyYaml(value: unknown): string {
  return Y().stringify(value, { lineWidth: 0, minContentWidth: 0 });
}

function locOf(file: YamlFile, node: { range?: [number, number, number] | null } | null | undefined): Location {
  if (!node?.range) return { file: file.display, line: 1, col: 1 };
  const pos = file.lines.linePos(node.range[0]);
  return { file: file.display, line: pos.line, col: pos.col };
}

/**
 * The location of the value at `path`, or of the deepest existing ancestor
 * (so a missing field points at the mapping that should hold it). With
 * `key: true` the location is that of the key rather than the value.
 */
export function locate(file: YamlFile, path: YamlPath, opts: { key?: boolean } = {}): Location {
  const { isMap, isPair, isScalar, isSeq } = Y();
  let node: unknown = file.doc.contents;
  let keyNode: unknown = undefined;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      keyNode = pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number" && node.items[seg] !== undefined) {
      keyNode = undefined;
      node = node.items[seg];
    } else {
      break;
    }
  }
  if (opts.key && keyNode) return locOf(file, keyNode as Node);
  return locOf(file, (node as Node | null) ?? (file.doc.contents as Node | null));
}
