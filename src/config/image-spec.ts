import { z } from "zod";

/**
 * The linuxkit image format (linuxkit's moby/config.go and schema.go), as a
 * strict schema: linuxkit accepted unknown keys inside mappings it did not
 * check and ignored them; kiln reports them with file:line and a suggestion.
 */

const strings = z.array(z.string());
const mapString = z.record(z.string(), z.string());
const intOrString = z.union([z.number().int(), z.string()]);

const idMapping = z.strictObject({ hostID: z.number().int(), containerID: z.number().int(), size: z.number().int() });

// uid/gidMappings of a mount are in linuxkit's schema but not passed on to config.json (as in linuxkit)
const mount = z.strictObject({
  destination: z.string().optional(),
  type: z.string().optional(),
  source: z.string().optional(),
  options: strings.optional(),
  uidMappings: z.array(idMapping).optional(),
  gidMappings: z.array(idMapping).optional(),
});

// `path: all` (a cgroup rule for every device of the type) needs no major, minor or mode; a device node does (checked when composing)
const device = z.strictObject({
  path: z.string(),
  type: z.string(),
  major: z.number().int().optional(),
  minor: z.number().int().optional(),
  mode: z.string().optional(),
});

const int = z.number().int();
const throttle = z.array(z.strictObject({ major: int.optional(), minor: int.optional(), rate: int.optional() }));
/** The OCI runtime spec's LinuxBlockIO. */
const blockio = z.strictObject({
  weight: int.optional(),
  leafWeight: int.optional(),
  weightDevice: z.array(z.strictObject({ major: int.optional(), minor: int.optional(), weight: int.optional(), leafWeight: int.optional() })).optional(),
  throttleReadBpsDevice: throttle.optional(),
  throttleWriteBpsDevice: throttle.optional(),
  throttleReadIOPSDevice: throttle.optional(),
  throttleWriteIOPSDevice: throttle.optional(),
});
const resources = z.strictObject({
  devices: z.array(z.strictObject({ allow: z.boolean().optional(), type: z.string().optional(), major: int.optional(), minor: int.optional(), access: z.string().optional() })).optional(),
  memory: z.strictObject({ limit: int.optional(), reservation: int.optional(), swap: int.optional(), kernel: int.optional(), kernelTCP: int.optional(), swappiness: int.optional(), disableOOMKiller: z.boolean().optional() }).optional(),
  cpu: z.strictObject({ shares: int.optional(), quota: int.optional(), period: int.optional(), realtimeRuntime: int.optional(), realtimePeriod: int.optional(), cpus: z.string().optional(), mems: z.string().optional() }).optional(),
  pids: z.strictObject({ limit: int.optional() }).optional(),
  blockio: blockio.optional(),
  hugepageLimits: z.array(z.strictObject({ pageSize: z.union([z.string(), int]).optional(), limit: int.optional() })).optional(),
  network: z.strictObject({ classID: int.optional(), priorities: z.array(z.strictObject({ name: z.string(), priority: int })).optional() }).optional(),
});

const namespaces = z.strictObject({
  cgroup: z.string().optional(),
  ipc: z.string().optional(),
  mnt: z.string().optional(),
  net: z.string().optional(),
  pid: z.string().optional(),
  user: z.string().optional(),
  uts: z.string().optional(),
});

const runtime = z.strictObject({
  cgroups: strings.optional(),
  mounts: z.array(mount).optional(),
  mkdir: strings.optional(),
  interfaces: z.array(z.strictObject({ name: z.string().optional(), add: z.string().optional(), peer: z.string().optional(), createInRoot: z.boolean().optional() })).optional(),
  bindNS: namespaces.optional(),
  namespace: z.string().optional(),
  noRestart: z.boolean().optional(),
});

/** The per-container fields; also what an image may carry in its org.mobyproject.config label. */
export const imageConfigShape = {
  capabilities: strings.optional(),
  "capabilities.add": strings.optional(),
  ambient: strings.optional(),
  mounts: z.array(mount).optional(),
  binds: strings.optional(),
  "binds.add": strings.optional(),
  devices: z.array(device).optional(),
  tmpfs: strings.optional(),
  command: strings.optional(),
  env: strings.optional(),
  cwd: z.string().optional(),
  net: z.string().optional(),
  pid: z.string().optional(),
  ipc: z.string().optional(),
  uts: z.string().optional(),
  userns: z.string().optional(),
  hostname: z.string().optional(),
  readonly: z.boolean().optional(),
  maskedPaths: strings.optional(),
  readonlyPaths: strings.optional(),
  uid: intOrString.optional(),
  gid: intOrString.optional(),
  additionalGids: z.array(intOrString).optional(),
  noNewPrivileges: z.boolean().optional(),
  oomScoreAdj: z.number().int().optional(),
  rootfsPropagation: z.string().optional(),
  cgroupsPath: z.string().optional(),
  resources: resources.optional(),
  sysctl: mapString.optional(),
  rlimits: strings.optional(),
  uidMappings: z.array(idMapping).optional(),
  gidMappings: z.array(idMapping).optional(),
  annotations: mapString.optional(),
  runtime: runtime.optional(),
};

export const containerSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9_.-]+$/, "a container name: lower-case letters, digits, '_', '.', '-'"),
  image: z.string().min(1),
  ...imageConfigShape,
});

export const imageLabelConfigSchema = z.strictObject(imageConfigShape);

export const fileSchema = z.strictObject({
  path: z.string().min(1),
  directory: z.boolean().optional(),
  symlink: z.string().optional(),
  contents: z.string().optional(),
  source: z.string().optional(),
  metadata: z.string().optional(),
  optional: z.boolean().optional(),
  mode: z.string().optional(),
  uid: intOrString.optional(),
  gid: intOrString.optional(),
});

export const volumeSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9_-]*$/),
  image: z.string().optional(),
  readonly: z.boolean().optional(),
  format: z.string().optional(),
  platforms: strings.optional(),
});

export const imageSpecSchema = z.strictObject({
  kernel: z
    .strictObject({
      // optional, as in linuxkit's schema: a kernel section without an image adds no kernel
      image: z.string().optional(),
      cmdline: z.string().optional(),
      binary: z.string().optional(),
      tar: z.string().optional(),
      ucode: z.string().optional(),
    })
    .optional(),
  init: strings.optional(),
  onboot: z.array(containerSchema).optional(),
  onshutdown: z.array(containerSchema).optional(),
  services: z.array(containerSchema).optional(),
  files: z.array(fileSchema).optional(),
  volumes: z.array(volumeSchema).optional(),
  trust: z.strictObject({ image: strings.optional(), org: strings.optional() }).optional(),
});

export type ImageSpec = z.infer<typeof imageSpecSchema>;
export type Container = z.infer<typeof containerSchema>;
export type ImageLabelConfig = z.infer<typeof imageLabelConfigSchema>;
export type SpecFile = z.infer<typeof fileSchema>;
