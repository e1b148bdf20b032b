// A yq (mikefarah/yq v4) expression interpreter, used to apply EVE-style image "modifier" files
// (images/modifiers/**/*.yq) to an image yml without running the yq binary.
//
// Why hand-written: no maintained JavaScript library implements mikefarah yq v4's language. The
// npm 'jq'/'yq'-named packages implement jq (or wrap the Python yq, which is jq), and jq differs
// exactly where modifiers live: yq's `=` evaluates its right side against the root, `+=`/`|=`
// create missing paths, `==` matches `*` wildcards, `*` deep-merges maps, binary operators of equal
// precedence group to the right, and results keep their place in the document. The semantics here
// follow yq's documentation (mikefarah.gitbook.io/yq/operators); see docs/modifiers.md for the
// supported subset. Anything outside it is reported (E_YQ_UNSUPPORTED), never ignored.

import { Evaluator } from "./eval.js";
import { fromJS, toJS } from "./nodes.js";
import { type Ast, parseExpression } from "./parser.js";
import { SourceText, type YqSource } from "./source.js";

export type { YqSource } from "./source.js";

export interface YqOptions {
  /** Variables for env()/strenv(); defaults to process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Parse only (to validate a modifier file without a document); throws the same errors as applyYq. */
export function parseYq(expression: string, source: YqSource): unknown {
  return parseExpression(new SourceText(expression, source));
}

/** Every result of the expression, as plain JS values (yq prints each as its own document). */
export function evaluateYq(doc: unknown, expression: string, source: YqSource, options: YqOptions = {}): unknown[] {
  const src = new SourceText(expression, source);
  const ast: Ast = parseExpression(src);
  let root;
  try {
    root = fromJS(doc);
  } catch (e) {
    throw src.error("E_YQ_EVAL", 0, (e as Error).message);
  }
  const results = new Evaluator(src, options.env ?? process.env).run(ast, root);
  return results.map(toJS);
}

/**
 * Apply a yq v4 expression (the whole text of a .yq file: comments and newlines allowed) to a
 * document and return the new document. The input is not mutated. The expression must produce
 * exactly one result, as a modifier rewrites one document.
 */
export function applyYq(doc: unknown, expression: string, source: YqSource, options: YqOptions = {}): unknown {
  const results = evaluateYq(doc, expression, source, options);
  if (results.length !== 1) {
    throw new SourceText(expression, source).error(
      "E_YQ_EVAL",
      0,
      `the expression produced ${results.length} results; a modifier must produce exactly one document`,
      results.length === 0
        ? "A top-level select(...) or del(.) left nothing; yq would write an empty file."
        : "Wrap the parts in a single expression (e.g. assignments joined with '|'), not ','.",
    );
  }
  return results[0];
}
