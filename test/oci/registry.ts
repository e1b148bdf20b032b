import { execa, type ResultPromise } from "execa";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll } from "vitest";
import { tempDir } from "../helpers/kiln.js";

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const running = new Set<Registry>();
afterAll(async () => {
  await Promise.all([...running].map((r) => r.stop()));
});

/**
 * Debian's docker-registry (distribution v2) on 127.0.0.1 with filesystem
 * storage in a temp folder; optionally htpasswd basic auth. Its access log is
 * kept in `log` so tests can count requests.
 */
export class Registry {
  proc?: ResultPromise;
  log = "";
  private constructor(readonly dir: string, readonly port: number, readonly config: string) {}

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get storage(): string {
    return join(this.dir, "data");
  }

  static async start(opts: { user?: string; password?: string } = {}): Promise<Registry> {
    const dir = await tempDir("kiln-registry");
    const port = await freePort();
    await mkdir(join(dir, "data"), { recursive: true });
    let auth = "";
    if (opts.user) {
      const { stdout } = await execa("htpasswd", ["-Bbn", opts.user, opts.password ?? ""]);
      await writeFile(join(dir, "htpasswd"), stdout.trim() + "\n");
      auth = `auth:\n  htpasswd:\n    realm: kiln-test\n    path: ${join(dir, "htpasswd")}\n`;
    }
    const config = join(dir, "config.yml");
    await writeFile(
      config,
      [
        "version: 0.1",
        "log:",
        "  level: info",
        "  formatter: text",
        "  accesslog:",
        "    disabled: false",
        "storage:",
        "  filesystem:",
        `    rootdirectory: ${join(dir, "data")}`,
        "  delete:",
        "    enabled: true",
        "http:",
        // Always loopback: the registry's default listens on every interface.
        `  addr: 127.0.0.1:${port}`,
        "  secret: kiln-test-secret",
        auth,
      ].join("\n"),
    );
    const r = new Registry(dir, port, config);
    await r.run();
    running.add(r);
    return r;
  }

  async run(): Promise<void> {
    const proc = execa("docker-registry", ["serve", this.config], { reject: false, all: true, buffer: false });
    proc.all?.on("data", (d: Buffer) => (this.log += d.toString()));
    this.proc = proc;
    for (let i = 0; i < 200; i++) {
      try {
        const res = await fetch(`http://${this.host}/v2/`);
        if (res.status === 200 || res.status === 401) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`docker-registry did not start:\n${this.log}`);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = undefined;
    p.kill("SIGKILL");
    await p;
  }

  /** Access-log lines of requests like `"PUT /v2/…"`. */
  requests(method: string, pathPart = ""): string[] {
    return this.log.split("\n").filter((l) => l.includes(`"${method} /v2/`) && l.includes(pathPart));
  }
}

/** Wait until the registry's log matches. */
export async function waitForLog(r: Registry, re: RegExp, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!re.test(r.log)) {
    if (Date.now() > end) throw new Error(`registry log never matched ${re}:\n${r.log.slice(-2000)}`);
    await new Promise((res) => setTimeout(res, 2));
  }
}
