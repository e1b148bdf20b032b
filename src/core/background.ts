/**
 * Work that goes on while the next stage runs (hashing an output for its
 * provenance on another thread), tracked so the command can wait for all of
 * it before it reports its outputs.
 */
const pending = new Set<Promise<void>>();

export function background(p: Promise<void>): void {
  const t = p.finally(() => pending.delete(t));
  pending.add(t);
  t.catch(() => undefined); // the error is thrown by settleBackground()
}

/** Wait for every background task; the first failure is thrown. */
export async function settleBackground(): Promise<void> {
  while (pending.size) await Promise.all([...pending]);
}
