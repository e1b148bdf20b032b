import { z } from "zod";

/**
 * The single source of truth for kiln.yml and pkg/<name>/build.yml. Loading
 * validates against these, and `npm run schema` turns them into the JSON
 * Schemas shipped in schema/ for editors.
 */

const NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;
import { ARCHS, ROOTFS_FORMATS } from "./archs.js";
import { imageLabelConfigSchema } from "./image-spec.js";

export { ARCHS };

const pkgName = z.string().regex(NAME_RE, "a package name: lower-case letters, digits, '.', '_' and '-'");
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "64 lower-case hex digits (a sha256)");
/** Octal permission bits; YAML 1.2 reads 0644 as the number 644, so numbers are read digit by digit as octal. */
const mode = z
  .union([z.string().regex(/^0?[0-7]{3,4}$/, "an octal mode such as \"0644\""), z.number().int().nonnegative()])
  .describe("permission bits in octal, e.g. \"0644\" or \"0755\"");
const inImagePath = z.string().regex(/^\//, "an absolute path inside the image, starting with '/'");

export const fileEntrySchema = z
  .strictObject({
    path: inImagePath.describe("where the entry goes in the image"),
    source: z.string().optional().describe("a file or directory in the package folder, copied (recursively) to path"),
    contents: z.string().optional().describe("literal file contents"),
    directory: z.boolean().optional().describe("create an (empty) directory"),
    symlink: z.string().optional().describe("create a symbolic link with this target"),
    device: z
      .strictObject({ type: z.enum(["char", "block", "fifo"]), major: z.number().int().nonnegative().optional(), minor: z.number().int().nonnegative().optional() })
      .optional()
      .describe("create a device node or fifo (only in the image's tar headers: no root needed)"),
    mode: mode.optional(),
    uid: z.number().int().nonnegative().optional(),
    gid: z.number().int().nonnegative().optional(),
    optional: z.boolean().optional().describe("skip this entry if source does not exist"),
  })
  .describe("one file, directory or link of a files package");

const common = {
  description: z.string().optional(),
  version: z.string().optional().describe("the package's own version, shown in listings and SBOMs"),
  depends: z.array(pkgName).optional().describe("packages needed to build this one; a script package gets them unpacked in $SYSROOT"),
  arch: z.array(z.enum(ARCHS)).optional().describe("architectures this package supports (default: all)"),
  labels: z.record(z.string(), z.string()).optional().describe("labels put into the OCI image config"),
  image: z
    .strictObject({
      entrypoint: z.array(z.string()).optional(),
      cmd: z.array(z.string()).optional(),
      env: z.array(z.string()).optional(),
      workdir: z.string().optional(),
      linuxkit: imageLabelConfigSchema.optional().describe("linuxkit container defaults (the org.mobyproject.config label): capabilities, binds, net, pid …"),
    })
    .optional()
    .describe("the OCI image config of the package, used when it runs as a container"),
};

export const filesRecipeSchema = z.strictObject({
  kind: z.literal("files"),
  ...common,
  files: z.array(fileEntrySchema).min(1),
});

export const sourceSchema = z
  .strictObject({
    path: z.string().optional().describe("a local file or directory, relative to the package folder"),
    url: z.string().optional().describe("http(s):// or file:// URL, downloaded once into the shared download cache"),
    sha256: sha256.optional().describe("required with url"),
    dest: z.string().optional().describe("name under $SRCDIR (default: the file or directory name)"),
    extract: z.boolean().optional().describe("unpack a tar archive into dest (default: true for .tar* URLs)"),
  })
  .describe("a source: a local path, or a URL with its sha256");

export const ownershipSchema = z.strictObject({
  path: inImagePath,
  uid: z.number().int().nonnegative().optional(),
  gid: z.number().int().nonnegative().optional(),
  mode: mode.optional(),
});

export const scriptRecipeSchema = z.strictObject({
  kind: z.literal("script"),
  ...common,
  sources: z.array(sourceSchema).optional(),
  script: z.string().min(1).describe("bash, run with cwd $SRCDIR; install results into $DESTDIR"),
  env: z.record(z.string(), z.string()).optional().describe("extra environment for the script"),
  tools: z.array(z.string()).optional().describe("host tools the script runs; their versions enter the cache key"),
  ownership: z.array(ownershipSchema).optional().describe("owner and mode overrides for paths in the output"),
});

export const debianRecipeSchema = z.strictObject({
  kind: z.literal("debian"),
  ...common,
  packages: z
    .array(z.string().regex(/^([a-z0-9+.-]|\$\{ARCH\})+(:[a-z0-9]+)?( *\((<<|<=|=|>=|>>) *[^)]+\))?$/, "a Debian package name, optionally with a version constraint (\"libc6 (>= 2.36)\"); ${ARCH} stands for the target architecture"))
    .min(1)
    .describe("Debian packages to install with their dependency closure (Depends, Pre-Depends)"),
  exclude: z.array(z.string()).optional().describe("packages never to install, even when something depends on them"),
  essential: z.boolean().optional().describe("also install the Essential: yes packages (default: false, for minimal images)"),
  paths: z.array(z.string()).optional().describe("keep only files matching these globs (e.g. /boot/vmlinuz-*, /lib/modules/**/virtio*.ko); default: everything"),
  usrmerge: z.boolean().optional().describe("make /bin, /sbin, /lib* symlinks into /usr, as Debian's usrmerge does (default: false)"),
  busyboxLinks: z.boolean().optional().describe("create a link for every busybox applet (what `busybox --install -s` would do; default: false)"),
  accounts: z.boolean().optional().describe("write /etc/passwd and /etc/group with Debian's base accounts (default: false)"),
  ldconfig: z.boolean().optional().describe("write /etc/ld.so.cache for the installed libraries (default: false)"),
  overwrite: z.array(z.string()).optional().describe("globs of paths that a later package may overwrite without an error (two packages writing one path is an error otherwise)"),
});

export const ociRecipeSchema = z.strictObject({
  kind: z.literal("oci"),
  ...common,
  ref: z
    .string()
    .regex(/^[^\s@]+@sha256:[0-9a-f]{64}$/, "an image reference pinned by digest: registry/name@sha256:<64 hex>")
    .describe("a third-party image, pinned by digest (the store is a pull-through cache)"),
});

export const recipeSchema = z.discriminatedUnion("kind", [filesRecipeSchema, scriptRecipeSchema, debianRecipeSchema, ociRecipeSchema]);

/**
 * A Pygos source package (pkg/<name>/build, a shell script used unchanged).
 * Nobody writes this as YAML: kiln fills it from the script's variables and
 * the product's layers (src/pygos/load.ts), and it enters the cache key like
 * any recipe, so a change of meaning shows in `kiln explain`.
 */
export const pygosRecipeSchema = z.strictObject({
  kind: z.literal("pygos"),
  ...common,
  /** The build script, project-relative (pkg/<name>/build). */
  script: z.string(),
  /** The product whose layers configure it (none: the host's toolchain and no layers). */
  product: z.string().optional(),
  /** What sourcing the script set. */
  meta: z.strictObject({
    version: z.string(),
    url: z.string(),
    tarball: z.string(),
    sha256: z.string(),
    srcdir: z.string(),
    depends: z.array(z.string()),
    subpkg: z.array(z.string()),
  }),
  /** Variables of the TOOLCHAIN and the build environment the package reads (by name in its scripts), with their values. */
  reads: z.record(z.string(), z.string()),
  /** Layer files the package reads (by name in its scripts): layer-relative path to "layer:sha256:..." of every layer that has it, in order. */
  layerFiles: z.record(z.string(), z.array(z.string())),
  /** How the compiler is provided (TC_KIND) and the target triplet. */
  toolchain: z.strictObject({ kind: z.enum(["host", "debian", "source"]), target: z.string(), packages: z.array(z.string()) }),
});

export type PygosRecipe = z.infer<typeof pygosRecipeSchema>;

const oneOrMany = z.union([z.string(), z.array(z.string()).min(1)]);
const knobMatch = z
  .strictObject({
    arch: oneOrMany.optional(),
    hv: oneOrMany.optional(),
    platform: oneOrMany.optional(),
    flavor: oneOrMany.optional(),
    format: oneOrMany.optional(),
  })
  .describe("knob values to match: each key one value or a list");

export { ROOTFS_FORMATS };
const perArch = <T extends z.ZodType>(inner: T) => z.union([inner, z.partialRecord(z.enum(ARCHS), inner)]);

export const variantsSchema = z
  .strictObject({
    hv: z.array(z.string().regex(NAME_RE)).min(1).optional().describe("hypervisors (EVE's HV), e.g. [kvm, xen, mini]"),
    platform: z.array(z.string().regex(NAME_RE)).min(1).optional().describe("platforms (EVE's PLATFORM), e.g. [generic, rt]"),
    flavor: z.array(z.string().regex(NAME_RE)).optional().describe("rootfs flavors (rootfs-<flavor>.yq modifiers)"),
    formats: z.array(z.enum(ROOTFS_FORMATS)).min(1).optional().describe("rootfs formats (ROOTFS_FORMAT)"),
    defaults: z
      .strictObject({
        hv: perArch(z.string()).optional(),
        platform: perArch(z.string()).optional(),
        format: perArch(z.enum(ROOTFS_FORMATS)).optional(),
      })
      .optional()
      .describe("default knob values, one for all archs or one per arch"),
    rules: z
      .array(z.strictObject({ when: knobMatch, require: knobMatch, message: z.string().optional() }))
      .optional()
      .describe("allowed combinations: when the knobs match `when`, they must match `require`"),
  })
  .describe("the variant matrix: which HVs, platforms, flavors and formats exist, and which combinations are allowed");

export const imagesSchema = z
  .strictObject({
    rootfs: z.string().optional().describe("the rootfs template (default images/rootfs.yml.in)"),
    installer: z.string().optional().describe("the installer template (default images/installer.yml.in)"),
    modifiers: z.string().optional().describe("the modifiers folder (default images/modifiers)"),
    maxsize: z.number().int().positive().optional().describe("rootfs budget in MiB (EVE's ROOTFS_MAXSIZE); checked before any disk is written"),
    compression: z.enum(["gzip", "xz", "zstd", "lz4", "lzo", "lzma"]).optional().describe("squashfs compression (default gzip)"),
    compressionLevel: z.number().int().min(1).max(22).optional().describe("the compressor's level (gzip 1-9, zstd 1-22; default: mksquashfs's)"),
    profiles: z
      .record(
        z.string().regex(/^[a-z][a-z0-9-]*$/),
        z.strictObject({
          compression: z.enum(["gzip", "xz", "zstd", "lz4", "lzo", "lzma"]).optional().describe("squashfs compression in this profile"),
          compressionLevel: z.number().int().min(1).max(22).optional().describe("the compressor's level in this profile"),
          provenance: z.boolean().optional().describe("write <output>.provenance.json beside rootfs.img and the disks (release: true, dev: false)"),
        }),
      )
      .optional()
      .describe("build profiles chosen with kiln build --profile NAME (or KILN_PROFILE): 'release' (the default: compression/compressionLevel above) and 'dev' (default lz4: fast rebuilds) can be changed, others added"),
    sbom: z
      .union([
        z.literal(false),
        z.strictObject({
          formats: z.array(z.enum(["spdx", "cyclonedx"])).optional().describe("SPDX 2.3 JSON and/or CycloneDX 1.5 JSON (default: both; [] for none)"),
          path: z.union([z.string(), z.literal(false)]).optional().describe("folder in the image the SBOMs go to (default /usr/share/sbom); false: only beside the image"),
          files: z.boolean().optional().describe("list every file of the image with its SHA-1 and SHA-256 (default true)"),
        }),
      ])
      .optional()
      .describe("software bills of materials for rootfs.tar and installer.tar, in the image and beside it (<kind>.spdx.json, <kind>.cdx.json); false: none"),
    config: z
      .strictObject({
        dir: z.string().optional().describe("the project's config folder (default conf)"),
        label: z.string().max(11).optional().describe("FAT volume label (default EVE)"),
        size: z.number().int().positive().optional().describe("size in KiB (default 1024, as EVE)"),
      })
      .optional()
      .describe("config.img: kiln's defaults overlaid by the project's conf/"),
  })
  .describe("where the linuxkit-format image templates are");

export const debianSchema = z
  .strictObject({
    mirror: z.string().optional().describe("Debian mirror URL (default: the one the machine's apt sources name, else http://deb.debian.org/debian)"),
    suite: z.string().optional().describe("suite, e.g. bookworm (default: the machine's apt suite)"),
    components: z.array(z.string()).optional().describe("default: [main]"),
    keyring: z.string().optional().describe("keyring for Release signatures (default: /usr/share/keyrings/debian-archive-keyring.gpg when present)"),
  })
  .describe("where debian packages come from");

export const PARTITION_CONTENTS = ["efi", "rootfs", "config", "persist", "empty"] as const;
const sizeSpec = z.union([z.literal("fit"), z.number().int().positive(), z.string().regex(/^\d+(K|M|G)(iB)?$/, "a size such as 300M, 1G or 512K (binary units)")]);
export const partitionSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9_]+$/).describe("the partition's role in kiln: efi, imga, imgb, conf, persist, conf_win …"),
  label: z.string().max(36).optional().describe("GPT partition name (default: from the name, as EVE labels them)"),
  type: z.string().describe("type GUID, or one of: efi, eve-rootfs, eve-conf, eve-persist, basic-data, linux"),
  size: sizeSpec.optional().describe("\"fit\" (the content rounded up to 1 MiB; the default), a size (300M, 1G), or MiB as a number"),
  start: z.union([z.number().int().nonnegative(), z.string().regex(/^\d+(K|M|G)(iB)?$/)]).optional().describe("explicit start (default: right after the previous partition, 1 MiB aligned)"),
  contents: z.enum(PARTITION_CONTENTS).describe("what goes in: efi (boot files), rootfs (rootfs.img), config (config.img), persist (persist.img or nothing), empty"),
  guid: z.string().optional().describe("unique partition GUID (default: derived from the content)"),
  gptprio: z
    .strictObject({ priority: z.number().int().min(0).max(15), tries: z.number().int().min(0).max(15).optional(), successful: z.boolean().optional() })
    .optional()
    .describe("CoreOS-style boot priority bits (48–56), as EVE's A/B slots use"),
  attributes: z.array(z.number().int().min(0).max(63)).optional().describe("other attribute bits to set"),
});

export const projectSchema = z.strictObject({
  name: pkgName.describe("the project name"),
  version: z.string().optional(),
  org: z.string().regex(/^[a-z0-9][a-z0-9._/-]*$/).optional().describe("image name prefix, like EVE's lfedge (default: kiln)"),
  archs: z.array(z.enum(ARCHS)).min(1).optional().describe("architectures the project builds for; the first is the default"),
  sourceDateEpoch: z.number().int().nonnegative().optional().describe("the fixed time for every timestamp in outputs (default: SOURCE_DATE_EPOCH or 0)"),
  packages: z.string().optional().describe("folder of package recipes (default: pkg)"),
  variants: variantsSchema.optional(),
  images: imagesSchema.optional(),
  debian: debianSchema.optional(),
  registry: z
    .strictObject({
      url: z.string().optional().describe("where `kiln push` and `kiln pkg push` go, e.g. localhost:5001/lfedge (EVE's REGISTRY / LINUXKIT_PKG_ORG)"),
      cacheFrom: z.array(z.string()).optional().describe("registries a build looks up each target's key in before building it"),
      cacheTo: z.string().optional().describe("registry a build pushes what it built to"),
      insecure: z.boolean().optional().describe("plain HTTP (default: only for localhost and 127.0.0.1)"),
    })
    .optional()
    .describe("OCI registries: push, pull and the shared remote cache"),
  disks: z
    .strictObject({
      live: z.array(partitionSchema).min(1).optional().describe("live.raw layout (default: EVE's efi, imga, imgb, conf, persist)"),
      installer: z.array(partitionSchema).min(1).optional().describe("installer.raw layout (default: efi, imga, conf_win)"),
    })
    .optional()
    .describe("partition layouts as data"),
});

export type FileEntry = z.infer<typeof fileEntrySchema>;
export type Source = z.infer<typeof sourceSchema>;
export type FilesRecipe = z.infer<typeof filesRecipeSchema>;
export type ScriptRecipe = z.infer<typeof scriptRecipeSchema>;
export type PartitionConfig = z.infer<typeof partitionSchema>;
export type ImagesConfig = z.infer<typeof imagesSchema>;
export type DebianRecipe = z.infer<typeof debianRecipeSchema>;
export type OciRecipe = z.infer<typeof ociRecipeSchema>;
/** A package recipe: one of build.yml's kinds, or a Pygos build script. */
export type Recipe = z.infer<typeof recipeSchema> | PygosRecipe;
export type ProjectConfig = z.infer<typeof projectSchema>;
export type VariantsConfig = z.infer<typeof variantsSchema>;
export type KnobMatch = z.infer<typeof knobMatch>;
