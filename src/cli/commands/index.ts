import type { Command } from "commander";
import { registerBuild } from "./build.js";
import { registerCheckUpdate } from "./check-update.js";
import { registerDiff } from "./diff.js";
import { registerDoctor } from "./doctor.js";
import { registerExplain } from "./explain.js";
import { registerLock } from "./lock.js";
import { registerPlan } from "./plan.js";
import { registerPull } from "./pull.js";
import { registerPush } from "./push.js";
import { registerPkg } from "./pkg/index.js";
import { registerStore } from "./store/index.js";
import { registerRun } from "./run.js";
import { registerValidate } from "./validate.js";
import { registerVariants } from "./variants.js";
import { registerVerifyReproducible } from "./verify-reproducible.js";

/** Every top-level command; each lives in the file named by its words. */
export const COMMANDS: ((program: Command) => void)[] = [registerBuild, registerPlan, registerExplain, registerValidate, registerPkg, registerStore, registerDoctor, registerVariants, registerRun, registerLock, registerCheckUpdate, registerPush, registerPull, registerDiff, registerVerifyReproducible];
