import { isoTime, ociPurl, SELF_ID } from "./ids.js";
import type { DebPackage, Inventory, KilnPackage } from "./inventory.js";
import { spdxLicenseId } from "./licenses.js";

/**
 * A CycloneDX 1.5 JSON BOM for an image: the image as metadata.component,
 * kiln packages as containers (purl pkg:oci by manifest digest, their
 * downloaded sources as distribution references with SHA-256), Debian
 * packages as libraries (purl pkg:deb, licenses), files with SHA-1 and
 * SHA-256, and the dependency graph (image → the packages it names, package →
 * its build dependencies and Debian packages). The serial number is a UUID
 * derived from the content and the timestamp is SOURCE_DATE_EPOCH.
 */
type Json = Record<string, unknown>;

const prop = (name: string, value: string) => ({ name, value });
const sha256 = (hex: string) => ({ alg: "SHA-256", content: hex.replace(/^sha256:/, "") });
const kilnRef = (name: string) => `kiln-package:${name}`;

function kilnComponent(p: KilnPackage): Json {
  return {
    type: "container",
    "bom-ref": kilnRef(p.name),
    name: p.name,
    version: p.version ?? p.ref.slice(p.ref.lastIndexOf(":") + 1),
    ...(p.description ? { description: p.description } : {}),
    hashes: [sha256(p.digest)],
    purl: p.purl,
    ...(p.sources.length ? { externalReferences: p.sources.map((s) => ({ type: "distribution", url: s.url, comment: "source, downloaded and verified by sha256", hashes: [sha256(s.sha256)] })) } : {}),
    properties: [prop("kiln:kind", p.kind), prop("kiln:ref", p.ref), prop("kiln:key", p.key), ...(p.base ? [prop("kiln:base", `${p.base.name}@${p.base.digest}`)] : [])],
  };
}

function debComponent(d: DebPackage): Json {
  const licenses = [...new Set(d.licenses)].map((n) => {
    const id = spdxLicenseId(n);
    return { license: id ? { id } : { name: n } };
  });
  return {
    type: "library",
    "bom-ref": d.purl,
    name: d.name,
    version: d.version,
    ...(d.debSha256 ? { hashes: [sha256(d.debSha256)] } : {}),
    ...(licenses.length ? { licenses } : {}),
    purl: d.purl,
    properties: [prop("kiln:debian:source", `${d.source} ${d.sourceVersion}`), prop("kiln:debian:licenseFrom", d.licenseFrom), ...(d.licenses.length ? [prop("kiln:debian:licenses", d.licenses.join(", "))] : [])],
  };
}

export function renderCycloneDx(inv: Inventory): Json {
  const i = inv.image;
  const imageRef = `kiln-image:${i.project}-${i.kind}`;
  const foreign = inv.foreign.map((f) => {
    const repo = f.ref.replace(/[:@][^:/@]+$/, "");
    return { type: "container", "bom-ref": `oci:${f.ref}`, name: repo, hashes: [sha256(f.digest)], purl: ociPurl(repo, f.digest) };
  });
  const files = inv.files.map((f) => ({
    type: "file",
    "bom-ref": `file:/${f.path}`,
    name: `/${f.path}`,
    hashes: [{ alg: "SHA-1", content: f.sha1 }, sha256(f.sha256)],
  }));
  const names = new Set(inv.packages.map((p) => p.name));
  const bom: Json = {
    $schema: "http://cyclonedx.org/schema/bom-1.5.schema.json",
    bomFormat: "CycloneDX",
    specVersion: "1.5",
    serialNumber: `urn:uuid:${SELF_ID}`, // the UUID of the rest (renderSboms)
    version: 1,
    metadata: {
      timestamp: isoTime(i.epoch),
      tools: { components: [{ type: "application", name: "kiln", version: i.tool }] },
      component: {
        type: "operating-system",
        "bom-ref": imageRef,
        name: `${i.project}-${i.kind}`,
        version: i.version,
        properties: [prop("kiln:arch", i.arch), prop("kiln:variant", i.variant)],
      },
    },
    components: [...inv.packages.map(kilnComponent), ...inv.debs.map(debComponent), ...foreign, ...files],
    dependencies: [
      { ref: imageRef, dependsOn: [...inv.packages.filter((p) => p.direct).map((p) => kilnRef(p.name)), ...foreign.map((f) => f["bom-ref"])] },
      ...inv.packages.map((p) => ({ ref: kilnRef(p.name), dependsOn: [...p.deps.filter((d) => names.has(d)).map(kilnRef), ...p.debs] })),
      ...inv.debs.map((d) => ({ ref: d.purl, dependsOn: [] })),
    ],
  };
  return bom;
}
