import { KilnError, type Diagnostic, type Location } from "../core/errors.js";
import type { Package, Project } from "../config/project.js";
import { didYouMean } from "../config/suggest.js";
import { locate } from "../config/yaml.js";

/** A buildable thing. Today packages ("pkg/NAME"); images and disks join in later stages. */
export interface Target {
  id: string;
  pkg: Package;
  deps: string[];
}

export interface Graph {
  targets: Map<string, Target>;
  /** Target ids, dependencies before dependents, ties by name. */
  order: string[];
}

export const pkgId = (name: string) => `pkg/${name}`;

/**
 * Build the package graph for one architecture (dependencies were checked
 * when the project loaded). A package whose `arch` list leaves this
 * architecture out is not a target here; depending on one is an error.
 * Cycles are errors naming each edge's file and line.
 */
export function buildGraph(project: Project, arch: string): Graph {
  const targets = new Map<string, Target>();
  const diagnostics: Diagnostic[] = [];
  const supports = (p: Package) => !p.recipe.arch || p.recipe.arch.includes(arch as never);
  for (const pkg of project.packages.values()) {
    if (!supports(pkg)) continue;
    const deps = [...new Set((pkg.recipe.depends ?? []).filter((d) => d !== pkg.name))];
    for (const [i, d] of deps.entries()) {
      const dep = project.packages.get(d);
      if (dep && !supports(dep)) {
        diagnostics.push({ code: "E_BAD_VALUE", message: `package '${pkg.name}' depends on '${d}', which is not built for ${arch} (its arch: ${dep.recipe.arch!.join(", ")})`, location: locate(pkg.file, ["depends", i]) });
      }
    }
    targets.set(pkgId(pkg.name), { id: pkgId(pkg.name), pkg, deps: deps.map(pkgId) });
  }
  if (diagnostics.length) throw KilnError.fromDiagnostics(diagnostics);
  return { targets, order: topoOrder(targets) };
}

function edgeLocation(from: Target, to: string): Location {
  const i = (from.pkg.recipe.depends ?? []).indexOf(to.slice("pkg/".length));
  return locate(from.pkg.file, ["depends", i]);
}

function topoOrder(targets: Map<string, Target>): string[] {
  const state = new Map<string, "visiting" | "done">();
  const order: string[] = [];
  const stack: string[] = [];
  const visit = (id: string) => {
    const s = state.get(id);
    if (s === "done") return;
    if (s === "visiting") {
      const cycle = [...stack.slice(stack.indexOf(id)), id];
      const edges = cycle.slice(0, -1).map((from, i) => {
        const loc = edgeLocation(targets.get(from)!, cycle[i + 1]!);
        return `  ${from} → ${cycle[i + 1]}   (${loc.file}:${loc.line}:${loc.col})`;
      });
      throw new KilnError("E_CYCLE", `dependency cycle: ${cycle.join(" → ")}`, {
        location: edgeLocation(targets.get(cycle[0]!)!, cycle[1]!),
        details: edges,
        hint: "remove one of these depends entries",
      });
    }
    state.set(id, "visiting");
    stack.push(id);
    for (const d of [...targets.get(id)!.deps].sort()) visit(d);
    stack.pop();
    state.set(id, "done");
    order.push(id);
  };
  for (const id of [...targets.keys()].sort()) visit(id);
  return order;
}

/** The targets named plus everything they depend on, in build order. */
export function closure(graph: Graph, roots: string[]): string[] {
  const want = new Set<string>();
  const add = (id: string) => {
    if (want.has(id)) return;
    want.add(id);
    for (const d of graph.targets.get(id)!.deps) add(d);
  };
  roots.forEach(add);
  return graph.order.filter((id) => want.has(id));
}

/** Map user spellings ("hello", "pkg/hello", "pkg/hello/") to target ids. */
export function resolveTargets(graph: Graph, names: string[]): string[] {
  const ids: string[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const raw of names) {
    const n = raw.replace(/\/+$/, "");
    const id = n.startsWith("pkg/") ? n : pkgId(n);
    if (graph.targets.has(id)) ids.push(id);
    else {
      diagnostics.push({ code: "E_UNKNOWN_TARGET", message: `no target '${raw}'`, hint: didYouMean(id, graph.targets.keys()) ?? "run `kiln pkg list` to see the targets" });
    }
  }
  if (diagnostics.length) throw KilnError.fromDiagnostics(diagnostics);
  return ids;
}
