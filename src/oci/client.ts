/**
 * A small client for the OCI distribution API (registry v2), hand-written on
 * Node's fetch (undici): there is no maintained Node OCI client that does
 * chunked uploads, cross-repository mounts and the bearer-token flow, and the
 * protocol is a handful of requests:
 *
 *   HEAD/GET  /v2/<repo>/blobs/<digest>          existence check, download
 *   POST      /v2/<repo>/blobs/uploads/          start an upload (…?mount=<digest>&from=<repo> to mount)
 *   PATCH     <location>  Content-Range: a-b     one chunk; the answer's Location is the next URL
 *   PUT       <location>&digest=<digest>         finish (with the body: a monolithic upload)
 *   HEAD/GET/PUT /v2/<repo>/manifests/<ref>      manifests and indexes, by tag or digest
 *
 * Auth: a 401 carries `WWW-Authenticate: Basic …` (send the credentials) or
 * `Bearer realm=…,service=…,scope=…` (get a token from the realm with the
 * credentials, if any, and send it); tokens are cached per scope.
 *
 * Robustness: every operation is retried from its start with exponential
 * backoff on dropped connections, 5xx and 429 (honouring Retry-After); a blob
 * push begins with a HEAD, so a retried or re-run push never re-sends a blob the
 * registry has. Downloads are hashed while they stream into a temp file of the
 * store and only renamed into it when the digest matches.
 *
 * Secrets never reach a message: all log lines and errors go through a Redactor
 * that knows the password, its base64 forms and every token.
 */
import { createWriteStream } from "node:fs";
import { open, rm } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { KilnError } from "../core/errors.js";
import { asDigest, type Digest, digestOf, hashingTap } from "../core/hash.js";
import { type Descriptor, MT, type Store } from "../store/layout.js";
import { type Credentials, findCredentials, Redactor } from "./auth.js";
import { apiHost, defaultInsecure } from "./ref.js";

export const DOCKER_MT = {
  manifest: "application/vnd.docker.distribution.manifest.v2+json",
  list: "application/vnd.docker.distribution.manifest.list.v2+json",
} as const;
const MANIFEST_ACCEPT = [MT.manifest, MT.index, DOCKER_MT.manifest, DOCKER_MT.list].join(", ");
export const isIndexType = (mt: string | undefined) => mt === MT.index || mt === DOCKER_MT.list;
export const isManifestType = (mt: string | undefined) => mt === MT.manifest || mt === DOCKER_MT.manifest;

export interface ClientOptions {
  /** Plain HTTP (default: only for localhost and 127.0.0.1, or KILN_REGISTRY_INSECURE=1). */
  insecure?: boolean;
  /** Use these; null for anonymous; undefined: look them up (env, ~/.docker/config.json). */
  credentials?: Credentials | null;
  /** Debug lines (already redacted). */
  log?: (msg: string) => void;
  /** Attempts after the first (default 6, or KILN_REGISTRY_RETRIES). */
  retries?: number;
  /** Blobs larger than this are uploaded in chunks of this size (default 16 MiB, or KILN_REGISTRY_CHUNK_SIZE). */
  chunkSize?: number;
  env?: NodeJS.ProcessEnv;
}

/** A failure worth trying again: a dropped connection, a 5xx, a 429. */
class Transient extends Error {
  constructor(message: string, readonly retryAfterMs?: number) {
    super(message);
  }
}

export interface PulledManifest {
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
}

export type PushResult = "exists" | "mounted" | "uploaded";

interface Challenge {
  scheme: "basic" | "bearer";
  realm?: string;
  service?: string;
}

export class RegistryClient {
  readonly base: string;
  readonly redactor = new Redactor();
  /** Requests sent, by kind; tests and `-v` use them. */
  readonly stats = { requests: 0, uploaded: 0, mounted: 0, existing: 0, downloaded: 0 };
  private challenge?: Challenge;
  private readonly tokens = new Map<string, string>();
  private creds?: Credentials | null;
  private readonly retries: number;
  private readonly chunkSize: number;

  constructor(readonly host: string, private readonly opts: ClientOptions = {}) {
    const env = opts.env ?? process.env;
    const insecure = opts.insecure ?? (env.KILN_REGISTRY_INSECURE === "1" || defaultInsecure(host));
    this.base = `${insecure ? "http" : "https"}://${apiHost(host)}/v2/`;
    this.creds = opts.credentials;
    this.redactor.addCredentials(opts.credentials ?? undefined);
    this.retries = opts.retries ?? numberEnv(env.KILN_REGISTRY_RETRIES, 6);
    this.chunkSize = opts.chunkSize ?? numberEnv(env.KILN_REGISTRY_CHUNK_SIZE, 16 << 20);
  }

  private log(msg: string): void {
    this.opts.log?.(this.redactor.clean(msg));
  }

  private async credentials(): Promise<Credentials | undefined> {
    if (this.creds === undefined) {
      this.creds = (await findCredentials(this.host, this.opts.env)) ?? null;
      this.redactor.addCredentials(this.creds ?? undefined);
    }
    return this.creds ?? undefined;
  }

  /** A KilnError whose message and details have no secret in them. */
  private error(code: "E_REGISTRY" | "E_REGISTRY_AUTH" | "E_REGISTRY_NOT_FOUND" | "E_BLOB_DIGEST", message: string, hint?: string): KilnError {
    return new KilnError(code, this.redactor.clean(message), { hint: hint && this.redactor.clean(hint) });
  }

  // ---- transport ----------------------------------------------------------

  private async authHeader(scopes: string[]): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    const creds = await this.credentials();
    if (c.scheme === "basic") return creds ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}` : undefined;
    const key = scopes.join(" ");
    let token = this.tokens.get(key);
    if (!token) {
      token = await this.fetchToken(c, scopes, creds);
      this.tokens.set(key, token);
      this.redactor.add(token);
    }
    return `Bearer ${token}`;
  }

  private async fetchToken(c: Challenge, scopes: string[], creds: Credentials | undefined): Promise<string> {
    if (!c.realm) throw this.error("E_REGISTRY_AUTH", `${this.host} asked for a bearer token without naming a realm`);
    const url = new URL(c.realm);
    if (c.service) url.searchParams.set("service", c.service);
    for (const s of scopes) url.searchParams.append("scope", s);
    const headers: Record<string, string> = {};
    if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
    let res: Response;
    try {
      res = await fetch(url, { headers });
    } catch (err) {
      throw new Transient(`cannot reach the token service ${url.origin}: ${causeOf(err)}`);
    }
    this.stats.requests++;
    this.log(`GET ${url.origin}${url.pathname} (token for ${scopes.join(" ")}) → ${res.status}`);
    if (res.status >= 500 || res.status === 429) throw new Transient(`token service ${url.origin}: HTTP ${res.status}`, retryAfter(res));
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw this.error("E_REGISTRY_AUTH", `${this.host}: the token service refused ${creds ? `the credentials of user '${creds.username}'` : "anonymous access"} (HTTP ${res.status})`, credsHint(creds));
    }
    if (!res.ok) throw this.error("E_REGISTRY_AUTH", `${this.host}: token service answered HTTP ${res.status}`);
    const j = (await res.json()) as { token?: string; access_token?: string };
    const token = j.token ?? j.access_token;
    if (!token) throw this.error("E_REGISTRY_AUTH", `${this.host}: the token service sent no token`);
    return token;
  }

  /**
   * One HTTP exchange, with the auth dance on 401. Throws Transient for what a
   * retry may fix (unless `serverErrors`: a 5xx is then the caller's to read);
   * returns every other answer to the caller.
   */
  private async request(
    method: string,
    path: string,
    init: { scopes: string[]; headers?: Record<string, string>; body?: Buffer; redirect?: RequestRedirect; serverErrors?: boolean },
  ): Promise<Response> {
    const url = /^https?:\/\//.test(path) ? path : new URL(path, this.base).toString();
    const show = `${method} ${url.replace(/\?.*$/, "")}`;
    for (let authTry = 0; ; authTry++) {
      const headers: Record<string, string> = { "user-agent": "kiln", ...init.headers };
      const auth = await this.authHeader(init.scopes);
      if (auth) headers.authorization = auth;
      let res: Response;
      try {
        res = await fetch(url, { method, headers, body: init.body as unknown as BodyInit | undefined, redirect: init.redirect ?? "follow" });
      } catch (err) {
        this.log(`${show} → ${causeOf(err)}`);
        throw new Transient(`${show}: ${causeOf(err)}`);
      }
      this.stats.requests++;
      this.log(`${show} → ${res.status}`);
      if (res.status === 401 && authTry === 0) {
        const header = res.headers.get("www-authenticate") ?? "";
        await res.body?.cancel();
        const c = parseChallenge(header);
        if (!c) throw this.error("E_REGISTRY_AUTH", `${this.host} refused ${show}: HTTP 401 without a usable WWW-Authenticate challenge`);
        const creds = await this.credentials();
        if (c.scheme === "basic" && !creds) throw this.error("E_REGISTRY_AUTH", `${this.host} needs credentials (basic auth) and none were found`, credsHint(undefined));
        this.challenge = c;
        this.tokens.clear();
        continue;
      }
      if (res.status === 401 || res.status === 403) {
        const body = await errorText(res);
        const creds = await this.credentials();
        throw this.error("E_REGISTRY_AUTH", `${this.host} refused ${show} for ${creds ? `user '${creds.username}'` : "anonymous access"}: HTTP ${res.status}${body}`, credsHint(creds));
      }
      if ((res.status >= 500 && !init.serverErrors) || res.status === 429) {
        const body = await errorText(res);
        throw new Transient(`${show}: HTTP ${res.status}${body}`, retryAfter(res));
      }
      return res;
    }
  }

  /** Run an operation from its start until it succeeds, fails for good, or the retries are used up. */
  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof Transient)) throw err;
        if (attempt >= this.retries) {
          throw this.error("E_REGISTRY", `${what} failed after ${attempt + 1} attempts: ${err.message}`, `check that ${this.host} is up and reachable (retries: KILN_REGISTRY_RETRIES)`);
        }
        const wait = Math.min(err.retryAfterMs ?? 250 * 2 ** attempt, 60_000) + Math.floor(Math.random() * 100);
        this.log(`${what}: ${err.message}; retrying in ${wait} ms`);
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  // ---- manifests ----------------------------------------------------------

  /** The descriptor of a manifest by tag or digest, or undefined when the registry does not have it. */
  async headManifest(repo: string, ref: string): Promise<Descriptor | undefined> {
    return this.retrying(`HEAD ${repo}:${ref}`, async () => {
      const res = await this.request("HEAD", `${repo}/manifests/${ref}`, { scopes: [pullScope(repo)], headers: { accept: MANIFEST_ACCEPT } });
      if (res.status === 404) return undefined;
      if (!res.ok) throw this.error("E_REGISTRY", `HEAD ${repo}:${ref}: HTTP ${res.status}`);
      const digest = res.headers.get("docker-content-digest");
      return { mediaType: (res.headers.get("content-type") ?? MT.manifest).split(";")[0]!, digest: asDigest(digest ?? ""), size: Number(res.headers.get("content-length") ?? 0) };
    });
  }

  /** A manifest's exact bytes; by digest they are verified. */
  async getManifest(repo: string, ref: string): Promise<PulledManifest> {
    return this.retrying(`GET ${repo}:${ref}`, async () => {
      const res = await this.request("GET", `${repo}/manifests/${ref}`, { scopes: [pullScope(repo)], headers: { accept: MANIFEST_ACCEPT } });
      if (res.status === 404) {
        await res.body?.cancel();
        throw this.error("E_REGISTRY_NOT_FOUND", `${this.host}/${repo}:${ref} does not exist`);
      }
      if (!res.ok) throw this.error("E_REGISTRY", `GET ${repo}:${ref}: HTTP ${res.status}${await errorText(res)}`);
      let bytes: Buffer;
      try {
        bytes = Buffer.from(await res.arrayBuffer());
      } catch (err) {
        throw new Transient(`GET ${repo}:${ref}: ${causeOf(err)}`);
      }
      const digest = digestOf(bytes);
      if (ref.startsWith("sha256:") && digest !== ref) throw this.error("E_BLOB_DIGEST", `${this.host}/${repo}@${ref}: the manifest received has digest ${digest}`, "the registry's copy is corrupt or it was tampered with; nothing was stored");
      let mediaType = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
      try {
        const j = JSON.parse(bytes.toString("utf8")) as { mediaType?: string; manifests?: unknown };
        mediaType = j.mediaType ?? (j.manifests ? MT.index : mediaType || MT.manifest);
      } catch {
        throw this.error("E_REGISTRY", `${this.host}/${repo}:${ref} is not a JSON manifest`);
      }
      return { bytes, mediaType, digest };
    });
  }

  async putManifest(repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<void> {
    await this.retrying(`PUT ${repo}:${ref}`, async () => {
      const res = await this.request("PUT", `${repo}/manifests/${ref}`, { scopes: [pushScope(repo)], headers: { "content-type": mediaType }, body: bytes });
      if (res.status !== 201 && res.status !== 200) throw this.error("E_REGISTRY", `PUT manifest ${repo}:${ref}: HTTP ${res.status}${await errorText(res)}`);
      await res.body?.cancel();
    });
  }

  // ---- blobs --------------------------------------------------------------

  async hasBlob(repo: string, digest: string): Promise<boolean> {
    return this.retrying(`HEAD ${repo}@${digest}`, async () => {
      const res = await this.request("HEAD", `${repo}/blobs/${digest}`, { scopes: [pullScope(repo)] });
      if (res.status === 404) return false;
      if (!res.ok) throw this.error("E_REGISTRY", `HEAD blob ${repo}@${digest}: HTTP ${res.status}`);
      return true;
    });
  }

  /**
   * Download a blob into the store: streamed into a temp file while hashed,
   * renamed into the store only when digest and size match.
   */
  async pullBlob(repo: string, desc: Descriptor, store: Store): Promise<void> {
    if (await store.hasBlob(desc.digest)) return;
    await this.retrying(`GET ${repo}@${desc.digest}`, async () => {
      const res = await this.request("GET", `${repo}/blobs/${desc.digest}`, { scopes: [pullScope(repo)] });
      if (res.status === 404) {
        await res.body?.cancel();
        throw this.error("E_REGISTRY_NOT_FOUND", `${this.host}/${repo}: blob ${desc.digest} does not exist`);
      }
      if (!res.ok || !res.body) throw this.error("E_REGISTRY", `GET blob ${repo}@${desc.digest}: HTTP ${res.status}${await errorText(res)}`);
      const tmp = store.tempPath("pull");
      const tap = hashingTap();
      try {
        await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), tap.stream, createWriteStream(tmp, { flags: "wx", mode: 0o444 }));
      } catch (err) {
        await rm(tmp, { force: true });
        throw new Transient(`GET blob ${repo}@${desc.digest}: ${causeOf(err)}`);
      }
      const got = tap.digest();
      const size = tap.size();
      if (got !== desc.digest || size !== desc.size) {
        await rm(tmp, { force: true });
        if (size < desc.size) throw new Transient(`GET blob ${repo}@${desc.digest}: connection ended after ${size} of ${desc.size} bytes`);
        throw this.error("E_BLOB_DIGEST", `${this.host}/${repo}: blob ${desc.digest} arrived with digest ${got} (${size} bytes, expected ${desc.size})`, "the registry's copy is corrupt or was tampered with; nothing was stored");
      }
      await store.ingestFile(tmp, desc.digest, desc.size, desc.mediaType);
      this.stats.downloaded++;
    });
  }

  /**
   * Put a blob of the store into a repository: nothing if the registry has it
   * (HEAD), a cross-repository mount if `mountFrom` names a repository of this
   * registry that has it, else a monolithic (small) or chunked (large) upload.
   */
  async pushBlob(repo: string, desc: Descriptor, store: Store, mountFrom: string[] = []): Promise<PushResult> {
    return this.retrying(`push ${repo}@${desc.digest}`, async () => {
      if (await this.headBlobOnce(repo, desc.digest)) {
        this.stats.existing++;
        return "exists" as const;
      }
      let location: string | undefined;
      for (const from of mountFrom.filter((f) => f !== repo)) {
        const res = await this.request("POST", `${repo}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`, { scopes: [pushScope(repo), pullScope(from)] });
        await res.body?.cancel();
        if (res.status === 201) {
          this.stats.mounted++;
          return "mounted" as const;
        }
        if (res.status === 202) {
          location = res.headers.get("location") ?? undefined;
          break;
        }
      }
      if (!location) location = await this.startUpload(repo);
      const fh = await open(store.blobPath(desc.digest), "r");
      try {
        if (desc.size <= this.chunkSize) {
          const body = Buffer.alloc(desc.size);
          await fh.read(body, 0, desc.size, 0);
          await this.finishUpload(repo, location, desc.digest, body);
        } else {
          for (let start = 0; start < desc.size; start += this.chunkSize) {
            const len = Math.min(this.chunkSize, desc.size - start);
            const body = Buffer.alloc(len);
            await fh.read(body, 0, len, start);
            const res = await this.request("PATCH", this.resolve(location), {
              scopes: [pushScope(repo)],
              headers: { "content-type": "application/octet-stream", "content-range": `${start}-${start + len - 1}`, "content-length": String(len) },
              body,
            });
            await res.body?.cancel();
            if (res.status !== 202) throw this.error("E_REGISTRY", `PATCH upload of ${desc.digest} to ${repo}: HTTP ${res.status}`);
            location = res.headers.get("location") ?? location;
          }
          await this.finishUpload(repo, location, desc.digest);
        }
      } finally {
        await fh.close();
      }
      this.stats.uploaded++;
      return "uploaded" as const;
    });
  }

  private async headBlobOnce(repo: string, digest: string): Promise<boolean> {
    const res = await this.request("HEAD", `${repo}/blobs/${digest}`, { scopes: [pushScope(repo)], serverErrors: true });
    if (res.status === 404) return false;
    // A registry killed while writing this blob can answer 500 for it for good (its link exists,
    // its data does not): uploading it again repairs that, so a push treats it as absent.
    if (res.status >= 500) return false;
    if (!res.ok) throw this.error("E_REGISTRY", `HEAD blob ${repo}@${digest}: HTTP ${res.status}`);
    return true;
  }

  private async startUpload(repo: string): Promise<string> {
    const res = await this.request("POST", `${repo}/blobs/uploads/`, { scopes: [pushScope(repo)] });
    await res.body?.cancel();
    const loc = res.headers.get("location");
    if (res.status !== 202 || !loc) throw this.error("E_REGISTRY", `POST ${repo}/blobs/uploads/: HTTP ${res.status}`);
    return loc;
  }

  private async finishUpload(repo: string, location: string, digest: string, body?: Buffer): Promise<void> {
    const url = new URL(this.resolve(location));
    url.searchParams.set("digest", digest);
    const res = await this.request("PUT", url.toString(), {
      scopes: [pushScope(repo)],
      headers: { "content-type": "application/octet-stream", "content-length": String(body?.length ?? 0) },
      body: body ?? Buffer.alloc(0),
    });
    if (res.status !== 201) throw this.error("E_REGISTRY", `PUT upload of ${digest} to ${repo}: HTTP ${res.status}${await errorText(res)}`);
    await res.body?.cancel();
  }

  private resolve(location: string): string {
    return new URL(location, this.base).toString();
  }
}

const pullScope = (repo: string) => `repository:${repo}:pull`;
const pushScope = (repo: string) => `repository:${repo}:pull,push`;

function numberEnv(v: string | undefined, dflt: number): number {
  const n = Number(v);
  return v !== undefined && v !== "" && Number.isFinite(n) && n >= 0 ? n : dflt;
}

function causeOf(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return [e.message, e.cause?.code ?? e.cause?.message].filter(Boolean).join(": ");
}

function retryAfter(res: Response): number | undefined {
  const v = res.headers.get("retry-after");
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** The registry's own error list ({errors: [{code, message}]}), short. */
async function errorText(res: Response): Promise<string> {
  try {
    const text = await res.text();
    const j = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    const list = (j.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(": ")).join("; ");
    return list ? ` (${list.slice(0, 300)})` : "";
  } catch {
    return "";
  }
}

function credsHint(creds: Credentials | undefined): string {
  return creds
    ? "check the user name and password (KILN_REGISTRY_USER / KILN_REGISTRY_PASSWORD, or ~/.docker/config.json)"
    : "log in (`docker login`, which writes ~/.docker/config.json) or set KILN_REGISTRY_USER and KILN_REGISTRY_PASSWORD";
}

/** `Bearer realm="https://auth",service="reg",scope="…"` → its parameters. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(basic|bearer)\b(.*)$/i.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/([a-zA-Z_]+)\s*=\s*(?:"([^"]*)"|([^,\s]*))/g)) params[p[1]!.toLowerCase()] = p[2] ?? p[3] ?? "";
  return { scheme: m[1]!.toLowerCase() as "basic" | "bearer", realm: params.realm, service: params.service };
}
