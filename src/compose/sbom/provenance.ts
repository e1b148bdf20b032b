import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { writeFileAtomic } from "../../core/atomic.js";
import { KILN_ROOT } from "../../core/paths.js";

/**
 * Provenance beside every output: an in-toto Statement v1 whose predicate is
 * SLSA Provenance v1, saying what the output (subject, by sha256) was made
 * from (resolvedDependencies, with digests) and with which settings
 * (externalParameters: target, project and variant knobs;
 * internalParameters: the key and the tool versions). Deterministic: no
 * times, no host names, no paths outside the output folder; the invocation
 * id is the output's key.
 */
export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const PREDICATE_TYPE = "https://slsa.dev/provenance/v1";
/** What `buildType` names: kiln's output build, documented in docs/reproducible.md. */
export const BUILD_TYPE = "https://kiln.invalid/provenance/output/v1";
/** The builder: kiln on the machine that ran it (its version goes to builder.version). */
export const BUILDER_ID = "https://kiln.invalid/builder/local";

let kilnVersion: string | undefined;
export function toolVersion(): string {
  kilnVersion ??= (JSON.parse(readFileSync(`${KILN_ROOT}package.json`, "utf8")) as { version: string }).version;
  return kilnVersion;
}

/** One input of an output: another output (by name, sha256 and key), a package image (by purl and digest), a file of the project. */
export interface ProvenanceInput {
  name: string;
  uri?: string;
  /** (Or its promise: an output still being hashed off-thread; writeProvenance waits.) */
  sha256?: string | Promise<string | undefined>;
  /** The input's kiln key, when it has one. */
  key?: string;
}

/** What an output was made from; the subject's name is the output's file name. */
export interface ProvenanceSpec {
  /** The target that made it ("rootfs.img", "live.qcow2"). */
  target: string;
  /** Project and variant knobs (ZARCH, HV, PLATFORM, FLAVOR, ROOTFS_FORMAT, ROOTFS_VERSION …). */
  params: Record<string, unknown>;
  /** Settings that are not the user's: host tool versions, options from kiln.yml. */
  internal?: Record<string, unknown>;
  deps: ProvenanceInput[];
  /** Files made alongside (SBOMs), by name and sha256. */
  byproducts?: ProvenanceInput[];
}

const digestOf = (sha: string | undefined) => (sha ? { digest: { sha256: sha.replace(/^sha256:/, "") } } : {});

function descriptor(i: ProvenanceInput & { sha256?: string }): Record<string, unknown> {
  return { name: i.name, ...(i.uri ? { uri: i.uri } : {}), ...digestOf(i.sha256), ...(i.key ? { annotations: { kilnKey: i.key } } : {}) };
}

export function provenanceStatement(out: string, spec: ProvenanceSpec & { deps: (ProvenanceInput & { sha256?: string })[]; byproducts?: (ProvenanceInput & { sha256?: string })[] }, sha256: string, key: string): Record<string, unknown> {
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: basename(out), digest: { sha256 } }],
    predicateType: PREDICATE_TYPE,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: { target: spec.target, ...spec.params },
        internalParameters: { key, ...spec.internal },
        resolvedDependencies: spec.deps.map(descriptor),
      },
      runDetails: {
        builder: { id: BUILDER_ID, version: { kiln: toolVersion() } },
        metadata: { invocationId: key },
        ...(spec.byproducts?.length ? { byproducts: spec.byproducts.map(descriptor) } : {}),
      },
    },
  };
}

export const provenancePath = (out: string) => `${out}.provenance.json`;

/** Write `<out>.provenance.json` unless it already holds exactly this (a cached output costs one small read). */
export async function writeProvenance(out: string, spec: ProvenanceSpec, sha256: string, key: string): Promise<void> {
  const settle = (l: ProvenanceInput[] | undefined) => (l ? Promise.all(l.map(async (i) => ({ ...i, sha256: await i.sha256 }))) : undefined);
  const [deps, byproducts] = await Promise.all([settle(spec.deps), settle(spec.byproducts)]);
  const text = `${JSON.stringify(provenanceStatement(out, { ...spec, deps: deps!, byproducts }, sha256, key), null, 2)}\n`;
  const path = provenancePath(out);
  if ((await readFile(path, "utf8").catch(() => "")) === text) return;
  await writeFileAtomic(path, text, { sync: false });
}
