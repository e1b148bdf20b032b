import { readFile } from "node:fs/promises";
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml";
import type { Diagnostic, Location } from "../core/errors.js";

/** A parsed YAML file that remembers where every node came from. */
export interface YamlFile {
  path: string;
  /** Path as shown to users (relative to the project). */
  display: string;
  doc: Document.Parsed;
  lines: LineCounter;
  data: unknown;
}

export type YamlPath = readonly (string | number)[];

export async function readYaml(path: string, display: string): Promise<{ file?: YamlFile; diagnostics: Diagnostic[] }> {
  const text = await readFile(path, "utf8");
  return parseYaml(text, path, display);
}

export function parseYaml(text: string, path: string, display: string): { file?: YamlFile; diagnostics: Diagnostic[] } {
  const lines = new LineCounter();
  // uniqueKeys: a duplicated key is an error, not a silent override.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const diagnostics: Diagnostic[] = doc.errors.map((e) => {
    const pos = lines.linePos(e.pos[0]);
    return {
      code: "E_YAML_SYNTAX",
      message: e.message.split("\n")[0] ?? e.message,
      location: { file: display, line: pos.line, col: pos.col },
    };
  });
  if (diagnostics.length) return { diagnostics };
  return { file: { path, display, doc, lines, data: doc.toJS() ?? {} }, diagnostics };
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
