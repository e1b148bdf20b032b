import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

/** A user name and a secret (password or token). Never printed: see Redactor. */
export interface Credentials {
  username: string;
  password: string;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** `https://index.docker.io/v1/`, `http://host:5000`, `host:5000/` → `host:5000`. */
function normHost(k: string): string {
  const h = k.replace(/^[a-z]+:\/\//, "").replace(/\/.*$/, "");
  return h === "index.docker.io" || h === "registry-1.docker.io" ? "docker.io" : h;
}

/**
 * Credentials for a registry host, in this order:
 * 1. KILN_REGISTRY_USER + KILN_REGISTRY_PASSWORD (every registry; for CI);
 * 2. ~/.docker/config.json ($DOCKER_CONFIG/config.json): `credHelpers[host]`, then
 *    `auths[host].auth` (base64 user:password), then `credsStore`; a helper is run as
 *    `docker-credential-<helper> get` with the host on stdin, as docker does.
 * Nothing found → anonymous.
 */
export async function findCredentials(host: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  if (env.KILN_REGISTRY_USER && env.KILN_REGISTRY_PASSWORD !== undefined) return { username: env.KILN_REGISTRY_USER, password: env.KILN_REGISTRY_PASSWORD };
  const dir = env.DOCKER_CONFIG || join(env.HOME || homedir(), ".docker");
  let cfg: DockerConfig;
  try {
    cfg = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as DockerConfig;
  } catch {
    return undefined;
  }
  const want = normHost(host);
  const helperFor = Object.entries(cfg.credHelpers ?? {}).find(([k]) => normHost(k) === want)?.[1];
  if (helperFor) return fromHelper(helperFor, host);
  const entry = Object.entries(cfg.auths ?? {}).find(([k]) => normHost(k) === want)?.[1];
  if (entry?.auth) {
    const plain = Buffer.from(entry.auth, "base64").toString("utf8");
    const i = plain.indexOf(":");
    if (i > 0) return { username: plain.slice(0, i), password: plain.slice(i + 1) };
  }
  if (entry?.username && entry.password !== undefined) return { username: entry.username, password: entry.password };
  if (cfg.credsStore) return fromHelper(cfg.credsStore, host);
  return undefined;
}

function fromHelper(helper: string, host: string): Credentials | undefined {
  const keys = host === "docker.io" ? ["https://index.docker.io/v1/", host] : [host, `https://${host}`];
  for (const key of keys) {
    const res = spawnSync(`docker-credential-${helper}`, ["get"], { input: key, encoding: "utf8", timeout: 30_000 });
    if (res.error || res.status !== 0) continue;
    try {
      const j = JSON.parse(res.stdout) as { Username?: string; Secret?: string };
      if (j.Username && j.Secret !== undefined) return { username: j.Username, password: j.Secret };
    } catch {
      // a helper that prints something else knows nothing
    }
  }
  return undefined;
}

/** Replaces every secret kiln knows (passwords, their base64 forms, tokens) in text meant for people. */
export class Redactor {
  private readonly secrets = new Set<string>();

  add(secret: string | undefined): void {
    if (secret && secret.length >= 3) this.secrets.add(secret);
  }

  addCredentials(c: Credentials | undefined): void {
    if (!c) return;
    this.add(c.password);
    this.add(Buffer.from(`${c.username}:${c.password}`).toString("base64"));
    this.add(encodeURIComponent(c.password));
  }

  clean(text: string): string {
    let out = text;
    for (const s of [...this.secrets].sort((a, b) => b.length - a.length)) out = out.split(s).join("***");
    return out.replace(/(authorization:\s*)(basic|bearer)\s+\S+/gi, "$1$2 ***");
  }
}
