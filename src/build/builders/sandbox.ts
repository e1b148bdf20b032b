import type { EventBus } from "../../core/events.js";
import { whichTool } from "../../core/tools.js";

let probed: Promise<string | null> | undefined;

/** bubblewrap, if installed and allowed to make namespaces here (checked once per run). */
function usableBwrap(bus: EventBus): Promise<string | null> {
  probed ??= (async () => {
    const path = await whichTool("bwrap");
    if (!path) {
      bus.emit({ type: "warn", message: "bubblewrap is not installed: build scripts run without isolation (apt-get install bubblewrap)" });
      return null;
    }
    const { execa } = await import("execa");
    const res = await execa(path, ["--unshare-all", "--ro-bind", "/", "/", "--", "true"], { reject: false, timeout: 10_000 });
    if (res.exitCode !== 0) {
      bus.emit({ type: "warn", message: `bubblewrap cannot create namespaces here (${res.stderr.trim()}): build scripts run without isolation` });
      return null;
    }
    return path;
  })();
  return probed;
}

/**
 * The sandbox for a build step: the host read-only, a private /tmp, /dev and
 * /proc, no network (--unshare-all), and only the step's scratch folder
 * writable. A write anywhere else fails with EROFS, which the builder reports
 * as E_WRITE_OUTSIDE_DESTDIR.
 */
export async function sandboxArgs(workDir: string, bus: EventBus): Promise<{ path: string; args: string[] } | null> {
  const path = await usableBwrap(bus);
  if (!path) return null;
  return {
    path,
    args: [
      "--unshare-all",
      "--die-with-parent",
      "--new-session",
      "--hostname", "kiln",
      "--ro-bind", "/", "/",
      "--dev", "/dev",
      "--proc", "/proc",
      "--tmpfs", "/tmp",
      "--bind", workDir, workDir,
    ],
  };
}
