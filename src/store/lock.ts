import { hostname } from "node:os";
import { mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { KilnError } from "../core/errors.js";
import { runSignal } from "../core/interrupt.js";

/**
 * An exclusive lock file holding the owner's pid. Written by hand rather than
 * with proper-lockfile because that library detects dead owners by mtime
 * staleness (seconds of waiting after a kill -9); a pid check on one host
 * recovers at once, which is what the "kill -9, build again" promise needs.
 */
export interface Lock {
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function tryAcquire(path: string): Promise<boolean> {
  try {
    const fh = await open(path, "wx");
    await fh.writeFile(`${process.pid}\n${hostname()}\n`);
    await fh.close();
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

/** Remove the lock if its owner is gone. Renaming first makes the removal atomic between racing stealers. */
async function breakIfStale(path: string): Promise<void> {
  let owner: string;
  try {
    owner = await readFile(path, "utf8");
  } catch {
    return;
  }
  const [pidText, host] = owner.split("\n");
  const pid = Number(pidText);
  if (!pidText) {
    // Empty: the owner is between open and write, or died there. Only an old one is dead.
    const age = Date.now() - (await stat(path).then((s) => s.mtimeMs, () => Date.now()));
    if (age < 2000) return;
  } else if (host !== hostname() || !Number.isInteger(pid) || alive(pid)) {
    return;
  }
  const aside = `${path}.stale-${process.pid}`;
  try {
    await rename(path, aside);
  } catch {
    return;
  }
  const moved = await readFile(aside, "utf8").catch(() => "");
  if (moved !== owner) {
    // Someone took the lock between our read and our rename: give it back.
    await rename(aside, path).catch(() => undefined);
    return;
  }
  await rm(aside, { force: true });
}

export async function acquireLock(path: string, onWait?: () => void): Promise<Lock> {
  await mkdir(dirname(path), { recursive: true });
  let delay = 10;
  let told = false;
  for (;;) {
    if (await tryAcquire(path)) {
      return { release: () => rm(path, { force: true }) };
    }
    await breakIfStale(path);
    if (await tryAcquire(path)) {
      return { release: () => rm(path, { force: true }) };
    }
    if (runSignal.aborted) throw new KilnError("E_INTERRUPTED", "interrupted while waiting for a lock");
    if (!told) {
      told = true;
      onWait?.();
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 200);
  }
}

/** In-process mutex, so tasks of one kiln process queue instead of polling the lock file. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
