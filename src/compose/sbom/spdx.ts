import { createHash } from "node:crypto";
import { isoTime, ociPurl, SELF_ID, spdxId } from "./ids.js";
import type { DebPackage, Inventory, KilnPackage } from "./inventory.js";
import { licenseExpression } from "./licenses.js";

/**
 * An SPDX 2.3 JSON document for an image: the image as the described package,
 * the kiln packages (OCI images, by manifest digest), their downloaded
 * sources, the Debian packages they hold, and the image's files with SHA-1
 * and SHA-256. Relationships: DESCRIBES, CONTAINS (image → packages and
 * files, package → Debian packages), DEPENDS_ON (the build graph),
 * GENERATED_FROM (package → source). The namespace is derived from the
 * content and `created` is SOURCE_DATE_EPOCH.
 */
type Json = Record<string, unknown>;

const NOASSERTION = "NOASSERTION";

interface Rel {
  spdxElementId: string;
  relationshipType: string;
  relatedSpdxElement: string;
}

export function docName(inv: Inventory): string {
  const i = inv.image;
  return `${i.project}-${i.kind}-${i.arch}-${i.variant}`;
}

function checksum(algorithm: string, hex: string | undefined): Json[] {
  return hex ? [{ algorithm, checksumValue: hex.replace(/^sha256:/, "") }] : [];
}

const purlRef = (locator: string): Json => ({ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: locator });

/** SPDX's package verification code (spec 2.3, 7.9): SHA-1 of the sorted SHA-1s of the files. */
function verificationCode(sha1s: string[]): string {
  return createHash("sha1").update([...sha1s].sort().join("")).digest("hex");
}

function debLicense(d: DebPackage, refs: Map<string, string>): Json {
  if (!d.licenses.length) return { licenseDeclared: NOASSERTION };
  const exprs = d.licenses.map(licenseExpression);
  const ids = [...new Set(exprs.map((e) => e.expr))];
  for (const [id, name] of exprs.flatMap((e) => e.refs)) refs.set(id, name);
  const from = d.licenseFrom === "copyright-format" ? "the License fields of its machine-readable copyright file" : "the licenses in /usr/share/common-licenses its copyright file refers to (a guess)";
  return {
    licenseDeclared: ids.length > 1 ? ids.join(" AND ") : ids[0],
    licenseComments: `Debian names ${d.licenses.join(", ")}, from ${from} (/usr/share/doc/${d.name}/copyright).`,
  };
}

function kilnPackage(p: KilnPackage): Json {
  return {
    SPDXID: spdxId("Package", p.name),
    name: p.name,
    versionInfo: p.version ?? p.ref.slice(p.ref.lastIndexOf(":") + 1),
    ...(p.description ? { summary: p.description } : {}),
    downloadLocation: p.sources.length === 1 ? p.sources[0]!.url : NOASSERTION,
    filesAnalyzed: false,
    checksums: checksum("SHA256", p.digest),
    licenseConcluded: NOASSERTION,
    licenseDeclared: NOASSERTION,
    copyrightText: NOASSERTION,
    externalRefs: [purlRef(p.purl)],
    primaryPackagePurpose: "CONTAINER",
    comment: `kiln ${p.kind} package; store reference ${p.ref}, key ${p.key}${p.base ? `; pulled from ${p.base.name}@${p.base.digest}` : ""}`,
  };
}

export function renderSpdx(inv: Inventory, embeddedAt: string[]): Json {
  const name = docName(inv);
  const i = inv.image;
  const imageId = spdxId("Image", `${i.project}-${i.kind}`);
  const rels: Rel[] = [{ spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: imageId }];
  const rel = (a: string, type: string, b: string) => rels.push({ spdxElementId: a, relationshipType: type, relatedSpdxElement: b });
  const licenseRefs = new Map<string, string>();
  const packages: Json[] = [
    {
      SPDXID: imageId,
      name: `${i.project}-${i.kind}`,
      versionInfo: i.version,
      downloadLocation: NOASSERTION,
      filesAnalyzed: inv.files.length > 0,
      ...(inv.files.length
        ? { packageVerificationCode: { packageVerificationCodeValue: verificationCode(inv.files.map((f) => f.sha1)), packageVerificationCodeExcludedFiles: embeddedAt.map((p) => `./${p}`) } }
        : {}),
      licenseConcluded: NOASSERTION,
      licenseDeclared: NOASSERTION,
      copyrightText: NOASSERTION,
      primaryPackagePurpose: "OPERATING_SYSTEM",
      comment: `the ${i.kind} image of ${i.project} for ${i.arch}, variant ${i.variant}, built by kiln`,
    },
  ];
  const pkgIds = new Map(inv.packages.map((p) => [p.name, spdxId("Package", p.name)]));
  const sources = new Map<string, string>();
  for (const p of inv.packages) {
    const id = pkgIds.get(p.name)!;
    packages.push(kilnPackage(p));
    if (p.direct) rel(imageId, "CONTAINS", id);
    for (const d of p.deps) if (pkgIds.has(d)) rel(id, "DEPENDS_ON", pkgIds.get(d)!);
    for (const purl of p.debs) rel(id, "CONTAINS", spdxId("Deb", purl));
    for (const s of p.sources) {
      const key = `${s.url} ${s.sha256}`;
      if (!sources.has(key)) {
        const sid = spdxId("Source", s.url.split("/").pop() || s.url, key);
        sources.set(key, sid);
        packages.push({
          SPDXID: sid,
          name: decodeURIComponent(s.url.split(/[?#]/)[0]!.split("/").pop() || s.url),
          ...(p.version ? { versionInfo: p.version } : {}),
          downloadLocation: s.url,
          filesAnalyzed: false,
          checksums: checksum("SHA256", s.sha256),
          licenseConcluded: NOASSERTION,
          licenseDeclared: NOASSERTION,
          copyrightText: NOASSERTION,
          primaryPackagePurpose: "SOURCE",
        });
      }
      rel(id, "GENERATED_FROM", sources.get(key)!);
    }
  }
  for (const d of inv.debs) {
    packages.push({
      SPDXID: spdxId("Deb", d.purl),
      name: d.name,
      versionInfo: d.version,
      downloadLocation: NOASSERTION,
      filesAnalyzed: false,
      checksums: checksum("SHA256", d.debSha256),
      sourceInfo: `built from the Debian source package ${d.source} ${d.sourceVersion}`,
      licenseConcluded: NOASSERTION,
      ...debLicense(d, licenseRefs),
      copyrightText: NOASSERTION,
      externalRefs: [purlRef(d.purl)],
    });
  }
  for (const f of inv.foreign) {
    const id = spdxId("Image", f.ref);
    const repo = f.ref.replace(/[:@][^:/@]+$/, "");
    packages.push({
      SPDXID: id,
      name: repo,
      downloadLocation: NOASSERTION,
      filesAnalyzed: false,
      checksums: checksum("SHA256", f.digest),
      licenseConcluded: NOASSERTION,
      licenseDeclared: NOASSERTION,
      copyrightText: NOASSERTION,
      externalRefs: [purlRef(ociPurl(repo, f.digest))],
      primaryPackagePurpose: "CONTAINER",
      comment: `image ${f.ref}, not a package of the project`,
    });
    rel(imageId, "CONTAINS", id);
  }
  const files = inv.files.map((f) => {
    const id = spdxId("File", f.path.split("/").pop()!, f.path);
    rel(imageId, "CONTAINS", id);
    return { SPDXID: id, fileName: `./${f.path}`, checksums: [...checksum("SHA1", f.sha1), ...checksum("SHA256", f.sha256)] };
  });
  const doc: Json = {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name,
    documentNamespace: `https://spdx.org/spdxdocs/${encodeURIComponent(name)}-${SELF_ID}`, // the UUID of the rest (renderSboms)
    creationInfo: { created: isoTime(i.epoch), creators: [`Tool: kiln-${i.tool}`] },
    packages,
    ...(files.length ? { files } : {}),
    ...(licenseRefs.size
      ? {
          hasExtractedLicensingInfos: [...licenseRefs].sort(([a], [b]) => (a < b ? -1 : 1)).map(([licenseId, debian]) => ({
            licenseId,
            name: debian,
            extractedText: `The license Debian calls "${debian}"; its text is in the copyright file of each package that names it (/usr/share/doc/PACKAGE/copyright).`,
          })),
        }
      : {}),
    relationships: rels,
  };
  return doc;
}
