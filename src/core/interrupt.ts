/**
 * One abort signal for the whole run. SIGINT/SIGTERM abort it; long work
 * (child processes, downloads, the scheduler) listens and stops, and cleanup
 * handlers registered here run before exit.
 */
const controller = new AbortController();
const cleanups = new Set<() => Promise<void> | void>();
let installed = false;

export const runSignal: AbortSignal = controller.signal;

export function installInterruptHandlers(): void {
  if (installed) return;
  installed = true;
  const onSignal = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      // Second Ctrl-C: leave now. Temp names are all we may leave behind.
      process.exit(130);
    }
    controller.abort(new Error(`interrupted by ${sig}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

export function onCleanup(fn: () => Promise<void> | void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

export async function runCleanups(): Promise<void> {
  for (const fn of [...cleanups]) {
    try {
      await fn();
    } catch {
      // Cleanup is best effort; the store's own invariants do not depend on it.
    }
  }
  cleanups.clear();
}
