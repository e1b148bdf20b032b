import { Command, CommanderError, Option } from "commander";
import { readFileSync } from "node:fs";
import { ExitCode } from "../core/codes.js";
import { asKilnError, KilnError } from "../core/errors.js";
import { EventBus } from "../core/events.js";
import { installInterruptHandlers, runCleanups, runSignal } from "../core/interrupt.js";
import { formatError } from "../report/errors.js";
import { attachReporter, chooseMode } from "../report/reporter.js";
import { colorsEnabled, paint } from "../report/style.js";
import { selectProduct } from "../pygos/select.js";
import type { GlobalOptions } from "./context.js";
import type { CommandResult } from "./output.js";
import { COMMANDS } from "./commands/index.js";
import { KILN_ROOT } from "../core/paths.js";

export interface Invocation {
  globals: GlobalOptions;
  bus: EventBus;
}

export type Handler = (inv: Invocation, ...args: never[]) => Promise<CommandResult>;

let exitCode: number = ExitCode.Ok;

/** Wrap a handler: reporter on, run, print the result (or the error), set the exit code. */
export function action(cmd: Command, handler: Handler) {
  return async (...args: unknown[]) => {
    const globals = cmd.optsWithGlobals<GlobalOptions>();
    const bus = new EventBus();
    const detach = attachReporter(bus, chooseMode(globals), !!globals.verbose);
    let events = 0;
    bus.on(() => events++);
    try {
      const res = await (handler as (inv: Invocation, ...a: unknown[]) => Promise<CommandResult>)({ globals, bus }, ...args.slice(0, -1));
      detach();
      // With --json, a command that streamed events ends with a result event; others print their data alone.
      if (globals.json) process.stdout.write(JSON.stringify(events ? { type: "result", data: res.data } : res.data) + "\n");
      else if (res.text) process.stdout.write(res.text.endsWith("\n") ? res.text : res.text + "\n");
      exitCode = res.exit ?? ExitCode.Ok;
    } catch (err) {
      detach();
      const e = runSignal.aborted ? new KilnError("E_INTERRUPTED", "interrupted; nothing partial was kept") : asKilnError(err);
      await runCleanups();
      reportError(e, globals);
      exitCode = e.exit;
    }
  };
}

function reportError(e: KilnError, globals: GlobalOptions): void {
  if (globals.json) process.stdout.write(JSON.stringify({ type: "error", ...e.toJSON() }) + "\n");
  process.stderr.write(formatError(e, paint(colorsEnabled(process.stderr))) + "\n");
  if (globals.verbose && e.code === "E_INTERNAL" && e.cause instanceof Error) process.stderr.write(`${e.cause.stack}\n`);
}

function version(): string {
  const pkg = JSON.parse(readFileSync(`${KILN_ROOT}package.json`, "utf8")) as { version: string };
  return pkg.version;
}

export function program(): Command {
  const p = new Command("kiln")
    .description("Build bootable operating-system images from packages: reproducible, no Docker daemon, no root.")
    .version(version(), "-V, --version")
    .option("-C, --dir <dir>", "the project folder (default: the nearest folder with kiln.yml)")
    .option("--store <dir>", "the OCI store (default: $KILN_STORE or ~/.cache/kiln)")
    .option("--out <dir>", "where outputs and logs go (default: PROJECT/out)")
    .option("--arch <arch>", "target architecture, EVE's ZARCH (default: the project's first arch)")
    .option("--product <name>", "Pygos trees: the product (product/NAME.layers) to work on; `build` builds it, every command sees its TOOLCHAIN and its build root's records (default: $KILN_PRODUCT, or the only product; docs/pygos.md)")
    .option("-j, --jobs <n>", "steps to run at once (default: number of cores + 2)")
    .option("--offline", "never use the network; everything must be cached")
    .option("--json", "machine-readable output: one JSON object per line")
    .option("-q, --quiet", "print only warnings and errors")
    .option("-v, --verbose", "print more detail")
    .addOption(new Option("--keep-work", "keep scratch folders of built packages (for debugging)").hideHelp())
    // Every command loads the project for the product given anywhere on the line (kiln plan --product NAME).
    .hook("preAction", (_p, cmd) => selectProduct(cmd.optsWithGlobals<GlobalOptions>().product))
    .showSuggestionAfterError(true)
    .configureHelp({ sortSubcommands: true })
    .addHelpText("after", "\nExit codes: 0 ok, 1 a target failed, 2 bad input (config or command line), 3 host problem (missing tool, store), 130 interrupted.\nDocs: docs/ in the kiln repository; error codes: docs/errors.md");
  for (const register of COMMANDS) register(p);
  return p;
}

export async function main(argv: string[]): Promise<number> {
  installInterruptHandlers();
  exitCode = ExitCode.Ok;
  const p = program();
  const usageExit = (c: Command) => {
    c.exitOverride();
    c.configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, "error[E_USAGE]: ")) });
    c.commands.forEach(usageExit);
  };
  usageExit(p);
  try {
    await p.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 || err.code === "commander.helpDisplayed" || err.code === "commander.version" ? ExitCode.Ok : ExitCode.BadInput;
    }
    throw err;
  }
  return exitCode;
}
