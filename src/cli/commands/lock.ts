import type { Command } from "commander";
import { lockProject, type LockChange, type LockResult } from "../../debian/locker.js";
import { splitKnobWords } from "../../variant/knobs.js";
import { openContext } from "../context.js";
import { action, type Invocation } from "../main.js";
import { table } from "../output.js";

/** How a lock run reads to people: one row per recipe and arch, then what changed. */
export function renderLock(res: LockResult, verb: { written: string; unchanged: string }): string {
  const rows = res.changes.map((c) => [`pkg/${c.recipe}`, c.arch, c.action, `${c.packages} package${c.packages === 1 ? "" : "s"}`]);
  const lines = rows.length ? [table([["RECIPE", "ARCH", "ACTION", "PACKAGES"], ...rows])] : ["no debian packages in this project"];
  for (const c of res.changes) lines.push(...changeLines(c));
  const from = `suite ${res.lock.suite} from ${res.lock.mirror}`;
  lines.push("", `${res.written ? verb.written : verb.unchanged} (${from}${res.verified ? `; InRelease ${res.verified.startsWith("gpgv") ? "verified by" : ""} ${res.verified}` : ""})`.replace(/ {2,}/g, " "));
  return lines.join("\n");
}

/** Version moves, additions and removals of an updated entry (a new entry's packages are in kiln.lock). */
function changeLines(c: LockChange): string[] {
  const at = `pkg/${c.recipe} ${c.arch}`;
  if (c.action !== "updated") return c.skipped.map((x) => `  ${at}: skipped ${x}`);
  return [
    ...c.changed.map((x) => `  ${at}: ${x}`),
    ...c.added.map((x) => `  ${at}: + ${x}`),
    ...c.removed.map((x) => `  ${at}: - ${x}`),
    ...c.skipped.map((x) => `  ${at}: skipped ${x}`),
  ];
}

export function registerLock(program: Command): void {
  const cmd = program
    .command("lock")
    .description("resolve debian packages against the mirror and pin them in kiln.lock (only what is missing, unless --update)")
    .argument("[packages...]", "debian packages of the project (default: all); ZARCH=arch locks one architecture only")
    .option("-u, --update", "resolve again against the mirror's current index, moving pins to the newest versions")
    .addHelpText("after", "\nExamples:\n  kiln lock                 add entries for new or changed debian recipes, keep the rest\n  kiln lock --update        re-resolve everything (after a point release)\n  kiln lock --update base   re-resolve pkg/base only");
  cmd.action(
    action(cmd, async (inv: Invocation, args: string[], opts: { update?: boolean }) => {
      const { targets, knobs } = splitKnobWords(args);
      if (knobs.ZARCH) inv.globals.arch = knobs.ZARCH;
      const ctx = await openContext(inv.globals, inv.bus);
      const res = await lockProject(ctx.project, ctx.store, {
        update: !!opts.update,
        names: targets,
        archs: inv.globals.arch ? [ctx.arch] : undefined,
        offline: ctx.offline,
        log: (line) => inv.bus.emit(line.startsWith("warning: ") ? { type: "warn", message: line.slice(9) } : { type: "info", message: line }),
      });
      return {
        data: { written: res.written, mirror: res.lock.mirror, suite: res.lock.suite, verified: res.verified, changes: res.changes },
        text: renderLock(res, { written: "kiln.lock written", unchanged: "kiln.lock is up to date" }),
      };
    }),
  );
}
