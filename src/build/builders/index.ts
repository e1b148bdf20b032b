import type { Recipe } from "../../config/schema.js";
import { KilnError } from "../../core/errors.js";
import type { LayerEntry } from "../layer.js";
import type { BuildStep } from "../step.js";
import { buildDebian } from "./debian.js";
import { buildFiles } from "./files.js";
import { buildPygos } from "./pygos.js";
import { buildScript } from "./script.js";

/** A builder turns one package into the entries of its layer. */
export type Builder = (step: BuildStep) => Promise<LayerEntry[]>;

/** Recipe kind → builder (linuxkit's output table idea): a new kind is one entry here. */
export const BUILDERS: Record<Recipe["kind"], Builder> = {
  files: buildFiles,
  script: buildScript,
  debian: buildDebian,
  pygos: buildPygos,
  // oci packages are pulled, not built from layer entries: the scheduler calls pullOciPackage (./oci.ts).
  oci: async (step) => {
    throw new KilnError("E_INTERNAL", `oci package ${step.pkg.name} reached the layer builders`);
  },
};
