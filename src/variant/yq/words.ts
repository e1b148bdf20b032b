// Which bare words mean what. yq v4 only knows a fixed set of words (its lexer has one rule per
// operator); kiln implements some of them, names the rest as unsupported, and treats any other word
// as a syntax error (or, inside `{...}` right before `:`, as a jq-style bare object key).

/** Words kiln implements, mapped to the canonical function name used in the AST. */
const SUPPORTED: ReadonlyArray<[RegExp, string]> = [
  [/^select$/, "select"],
  [/^test$/, "test"],
  [/^has$/, "has"],
  [/^map$/, "map"],
  [/^map_?values$/, "map_values"],
  [/^del$/, "del"],
  [/^(to_?entries|toEntries)$/, "to_entries"],
  [/^(from_?entries|fromEntries)$/, "from_entries"],
  [/^(with_?entries|withEntries)$/, "with_entries"],
  [/^keys$/, "keys"],
  [/^key$/, "key"],
  [/^length$/, "length"],
  [/^first$/, "first"],
  [/^not$/, "not"],
  [/^to_?string$/, "tostring"],
  [/^(type|tag)$/, "type"],
];

/** Words yq v4 knows (per its lexer) that kiln does not implement. */
const YQ_UNSUPPORTED: readonly RegExp[] = [
  /^(line_?comment|lineComment|head_?comment|headComment|foot_?comment|footComment|comments)$/,
  /^(ref|line|column|eval|to_?number|filter|pick|omit|flatten|format_datetime|now|tz)$/,
  /^(from_?unix|to_?unix|with_dtf|error|shuffle|sortKeys|sort_?keys|array_?to_?map|root)$/,
  /^(to_?yaml|to_?xml|to_?json|from_?yaml|from_?json|from_?props|to_?props|from_?xml|from_?csv|to_?csv|from_?tsv|to_?tsv)$/,
  /^(load_?xml|xml_?load|load_?base64|load_?props|load_?str|str_?load|load|splitDoc|split_?doc)$/,
  /^(unique_?by|unique|group_?by|explode|ireduce|join|sub|match|capture|sort_?by|sort|reverse)$/,
  /^(any_c|any|all_c|all|contains|split|parents|parent|is_?key|file_?name|fileName|file_?index|fileIndex|fi)$/,
  /^(path|set_?path|del_?paths|with|collect|style|kind|anchor|alias|documentIndex|document_?index|di)$/,
  /^(upcase|ascii_?upcase|downcase|ascii_?downcase|trim|envsubst|min|max|pivot)$/,
  /^(if|then|elif|else|end)$/,
];

/** jq functions that are not yq v4 operators; named explicitly so the message can say so. */
const JQ_ONLY = new Set([
  "last", "empty", "reduce", "foreach", "range", "recurse", "paths", "getpath", "leaf_paths", "add", "ascii",
  "splits", "gsub", "ltrimstr", "rtrimstr", "startswith", "endswith", "input", "inputs", "debug", "stderr",
  "isempty", "until", "while", "repeat", "label", "def", "try", "catch", "indices", "index", "rindex", "inside",
  "combinations", "walk", "transpose", "values", "nulls", "booleans", "numbers", "strings", "arrays", "objects",
  "iterables", "scalars", "min_by", "max_by", "implode", "todate", "fromdate", "nth", "in", "halt", "halt_error",
  "abs", "floor", "sqrt", "pow", "log", "infinite", "nan", "isinfinite", "isnan", "isnormal", "builtins",
  "input_line_number", "significand", "exp", "exp10", "tojson", "fromjson", "tonumber",
]);

export type WordClass =
  | { kind: "supported"; name: string }
  | { kind: "literal"; value: "true" | "false" | "null" }
  | { kind: "keyword"; name: "and" | "or" | "as" }
  | { kind: "limit" }
  | { kind: "yq-unsupported" }
  | { kind: "jq-only" }
  | { kind: "unknown" };

export function classifyWord(word: string): WordClass {
  const lower = word.toLowerCase();
  if (lower === "true" || lower === "false" || lower === "null") return { kind: "literal", value: lower };
  if (word === "and" || word === "or" || word === "as") return { kind: "keyword", name: word };
  for (const [re, name] of SUPPORTED) if (re.test(word)) return { kind: "supported", name };
  if (word === "limit") return { kind: "limit" };
  if (YQ_UNSUPPORTED.some((re) => re.test(word))) return { kind: "yq-unsupported" };
  if (JQ_ONLY.has(word)) return { kind: "jq-only" };
  return { kind: "unknown" };
}

/** True when yq v4 itself would read this word as an operator (so it cannot be a bare object key). */
export function isYqWord(word: string): boolean {
  const c = classifyWord(word).kind;
  return c === "supported" || c === "literal" || c === "keyword" || c === "yq-unsupported";
}
