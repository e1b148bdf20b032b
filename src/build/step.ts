import type { Package, Project } from "../config/project.js";
import type { EventBus } from "../core/events.js";
import type { PlanNode } from "../graph/plan.js";
import type { Descriptor, Store } from "../store/layout.js";
import type { StepLog } from "./log.js";

/** What a builder gets: one package, its scratch folder, its log, and its dependencies' layers. */
export interface BuildStep {
  project: Project;
  pkg: Package;
  node: PlanNode;
  store: Store;
  log: StepLog;
  /** A fresh scratch folder, removed after a successful build. */
  workDir: string;
  arch: string;
  offline: boolean;
  jobs: number;
  /** Layers of all build dependencies (transitively), dependencies first. */
  depLayers: Descriptor[];
  bus: EventBus;
  /** Labels a builder adds to the image config (e.g. the Debian package list, for SBOMs). */
  labels?: Record<string, string>;
}
