import type { Container, ImageLabelConfig } from "../config/image-spec.js";

/** The subset of an OCI image config kiln reads. */
export interface ImageConfigJson {
  architecture?: string;
  config?: { Env?: string[]; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string; User?: string; Labels?: Record<string, string> };
}

type Mount = { destination: string; type: string; source: string; options: string[] };

const ALL_CAPS = [
  "CAP_AUDIT_CONTROL", "CAP_AUDIT_READ", "CAP_AUDIT_WRITE", "CAP_BLOCK_SUSPEND", "CAP_BPF", "CAP_CHECKPOINT_RESTORE", "CAP_CHOWN",
  "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_KILL", "CAP_LEASE",
  "CAP_LINUX_IMMUTABLE", "CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE", "CAP_MKNOD", "CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
  "CAP_NET_RAW", "CAP_PERFMON", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYSLOG", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
  "CAP_SYS_CHROOT", "CAP_SYS_MODULE", "CAP_SYS_NICE", "CAP_SYS_PACCT", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_WAKE_ALARM",
];

/**
 * linuxkit's default mounts (moby/config.go): no /dev/shm or /dev/mqueue; /dev and /sys read-only
 * when the container is.
 */
function defaultMounts(readonly: boolean): Mount[] {
  const ro = readonly ? ["ro"] : [];
  return [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "nodev", "noexec", "relatime"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k", ...ro] },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", ...ro] },
    { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] },
  ];
}

/** Where a mount of this type goes when the yml gives no destination (linuxkit's defaultMountpoint). */
const DEFAULT_MOUNTPOINT: Record<string, string> = { proc: "/proc", devpts: "/dev/pts", sysfs: "/sys", cgroup: "/sys/fs/cgroup", mqueue: "/dev/mqueue" };
/** A mount source that names its own type (`{source: cgroup}`). */
const TYPED_SOURCES = new Set(["mqueue", "devpts", "proc", "sysfs", "cgroup"]);

/** "unlimited" in an rlimit: the largest uint64, kept exact (a JS number would round it). */
const UNLIMITED = 2n ** 64n - 1n;

const RLIMITS = new Set(["CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"]);

/**
 * A capability list as linuxkit reads it: "all" or "none" alone mean every
 * capability or none; otherwise each name must be a known CAP_… (any case, the
 * prefix optional: kiln is more lenient than linuxkit here).
 */
function caps(list: string[]): string[] {
  if (list.length === 1 && list[0]!.toLowerCase() === "all") return ALL_CAPS;
  if (list.length === 1 && list[0]!.toLowerCase() === "none") return [];
  return list.map((c) => {
    const u = c.toUpperCase();
    const name = u.startsWith("CAP_") ? u : `CAP_${u}`;
    if (!ALL_CAPS.includes(name)) throw new Error(`unknown capability '${c}'`);
    return name;
  });
}

/** "src:dst[:opt,opt]" → a bind mount: options rw,rbind,rshared, or the given ones and rbind (linuxkit's binds). */
function bindMount(b: string): Mount {
  const parts = b.split(":");
  if (parts.length < 2 || parts.length > 3) throw new Error(`bind '${b}' is not SOURCE:DESTINATION[:OPTIONS]`);
  const [source, destination, opts] = parts as [string, string, string | undefined];
  return { destination, type: "bind", source, options: opts ? [...opts.split(","), "rbind"] : ["rw", "rbind", "rshared"] };
}

/** "dst[:opt,opt]" → a tmpfs mount, with only the options given. */
function tmpfsMount(t: string): Mount {
  const parts = t.split(":");
  if (parts.length > 2) throw new Error(`tmpfs '${t}' is not DESTINATION[:OPTIONS]`);
  return { destination: parts[0]!, type: "tmpfs", source: "tmpfs", options: parts[1] ? parts[1].split(",") : [] };
}

/** A `mounts` entry completed as linuxkit does: the type from the source or /dev, the source from the type, the destination from the type. */
function specMount(m: { destination?: string; type?: string; source?: string; options?: string[] }): Mount {
  const type = m.type || (m.source && TYPED_SOURCES.has(m.source) ? m.source : m.destination === "/dev" ? "tmpfs" : undefined);
  if (!type) throw new Error(`mount ${JSON.stringify(m.destination ?? m.source ?? "")} is missing type`);
  const destination = m.destination || DEFAULT_MOUNTPOINT[type];
  if (!destination) throw new Error(`mount of type ${type} is missing destination`);
  return { destination, type, source: m.source || type, options: m.options ?? [] };
}

/** "nofile,1024,2048" (spaces allowed, "unlimited" for either value) → an OCI rlimit. */
function rlimit(r: string): { type: string; soft: bigint; hard: bigint } {
  const parts = r.split(",").map((x) => x.trim());
  if (parts.length !== 3) throw new Error(`rlimit '${r}' is not NAME,SOFT,HARD`);
  const name = parts[0]!.toUpperCase().replace(/^RLIMIT_/, "");
  if (!RLIMITS.has(name)) throw new Error(`rlimit '${r}': unknown limit ${parts[0]} (one of: ${[...RLIMITS].map((x) => x.toLowerCase()).join(", ")})`);
  const value = (v: string): bigint => {
    if (v.toLowerCase() === "unlimited") return UNLIMITED;
    if (!/^\d+$/.test(v) || BigInt(v) > UNLIMITED) throw new Error(`rlimit '${r}': '${v}' is not a number or 'unlimited'`);
    return BigInt(v);
  };
  return { type: `RLIMIT_${name}`, soft: value(parts[1]!), hard: value(parts[2]!) };
}

export interface Ids {
  uid: number;
  gid: number;
  additionalGids: number[];
}

/**
 * A container's OCI runtime config (config.json), with linuxkit's rules
 * (ConfigToOCI): each field from the yml entry, else from the image's
 * org.mobyproject.config label, else linuxkit's default; the image config
 * gives only the command (Entrypoint + Cmd), the environment and the working
 * folder. Lists replace (env too); "binds.add" and "capabilities.add" append
 * to the label's list. No capabilities unless named; network, IPC and UTS
 * are the host's unless "new" (or a path), PID, mount and cgroup namespaces
 * new; no host name unless set. Numbers too big for a JS number (an
 * unlimited rlimit) are bigints: write the result with ociJson.
 */
export function runtimeConfig(c: Container, image: ImageConfigJson, label: ImageLabelConfig, ids: Ids): Record<string, unknown> {
  const pick = <K extends keyof ImageLabelConfig>(k: K): ImageLabelConfig[K] => (c[k as keyof Container] as ImageLabelConfig[K]) ?? label[k];
  // strings where linuxkit reads "" as not set (assignStringEmpty): the label's value, then the default, apply
  const text = (k: "cwd" | "hostname" | "net" | "ipc" | "uts" | "pid" | "userns"): string | undefined => c[k] || label[k] || undefined;
  const ic = image.config ?? {};
  const readonly = pick("readonly") ?? false;
  const args = pick("command") ?? [...(ic.Entrypoint ?? []), ...(ic.Cmd ?? [])];
  const env = pick("env") ?? ic.Env ?? [];
  const effective = caps(c.capabilities ?? [...(label.capabilities ?? []), ...(c["capabilities.add"] ?? [])]);
  const ambient = caps(pick("ambient") ?? []);
  const held = [...new Set([...effective, ...ambient])].sort();

  const mounts = new Map<string, Mount>(defaultMounts(readonly).map((m) => [m.destination, m]));
  const put = (m: Mount) => mounts.set(m.destination, m);
  for (const t of pick("tmpfs") ?? []) put(tmpfsMount(t));
  for (const b of c.binds ?? [...(label.binds ?? []), ...(c["binds.add"] ?? [])]) put(bindMount(b));
  for (const m of pick("mounts") ?? []) put(specMount(m));

  // network, ipc, uts, pid, user: "host"/"root" share the host's; "new" (and "none", for the network) a new one; anything else is a path to join
  const namespaces: { type: string; path?: string }[] = [];
  const ns = (type: string, v: string, fresh: string[]) => {
    if (v === "host" || v === "root") return;
    namespaces.push(fresh.includes(v) ? { type } : { type, path: v });
  };
  ns("network", text("net") ?? "host", ["new", "none"]);
  ns("ipc", text("ipc") ?? "host", ["new"]);
  ns("uts", text("uts") ?? "host", ["new"]);
  ns("pid", text("pid") ?? "new", ["new"]);
  ns("user", text("userns") ?? "host", ["new"]);
  namespaces.push({ type: "mount" }, { type: "cgroup" });

  const rlimits = (pick("rlimits") ?? []).map(rlimit);

  const devices: Record<string, unknown>[] = [];
  const allow: Record<string, unknown>[] = [];
  for (const d of pick("devices") ?? []) {
    if (d.path === "all") {
      allow.push({ allow: true, type: d.type, access: "rwm" });
      continue;
    }
    if (d.major === undefined || d.minor === undefined) throw new Error(`device ${d.path} needs major and minor (or path: all)`);
    if (!d.mode || !/^0?[0-7]{1,4}$/.test(d.mode)) throw new Error(`device ${d.path} needs an octal mode, e.g. "0666"`);
    devices.push({ path: d.path, type: d.type, major: d.major, minor: d.minor, fileMode: parseInt(d.mode, 8) });
    allow.push({ allow: true, type: d.type, major: d.major, minor: d.minor, access: "rwm" });
  }
  const resources = pick("resources");
  const withDevices = allow.length ? { ...resources, devices: [...(resources?.devices ?? []), ...allow] } : resources;

  const cwd = text("cwd") ?? (ic.WorkingDir || "/");
  const hostname = text("hostname");
  // linuxkit leaves empty maps and lists out (omitempty)
  const some = <T extends object>(v: T | undefined): v is T => v !== undefined && Object.keys(v).length > 0;
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: ids.uid, gid: ids.gid, ...(ids.additionalGids.length ? { additionalGids: ids.additionalGids } : {}) },
      args,
      env,
      cwd,
      capabilities: { bounding: held, effective, inheritable: held, permitted: held, ...(ambient.length ? { ambient } : {}) },
      ...(rlimits.length ? { rlimits } : {}),
      noNewPrivileges: pick("noNewPrivileges") ?? false,
      ...(pick("oomScoreAdj") !== undefined ? { oomScoreAdj: pick("oomScoreAdj") } : {}),
    },
    root: { path: "rootfs", readonly },
    ...(hostname ? { hostname } : {}),
    mounts: [...mounts.values()].sort((a, b) => (a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0)),
    linux: {
      namespaces,
      ...(some(pick("uidMappings")) ? { uidMappings: pick("uidMappings") } : {}),
      ...(some(pick("gidMappings")) ? { gidMappings: pick("gidMappings") } : {}),
      ...(devices.length ? { devices } : {}),
      ...(withDevices ? { resources: withDevices } : {}),
      ...(some(pick("sysctl")) ? { sysctl: pick("sysctl") } : {}),
      ...(pick("cgroupsPath") ? { cgroupsPath: pick("cgroupsPath") } : {}),
      ...(pick("rootfsPropagation") ? { rootfsPropagation: pick("rootfsPropagation") } : {}),
      ...(some(pick("maskedPaths")) ? { maskedPaths: pick("maskedPaths") } : {}),
      ...(some(pick("readonlyPaths")) ? { readonlyPaths: pick("readonlyPaths") } : {}),
    },
    ...(some(pick("annotations")) ? { annotations: pick("annotations") } : {}),
  };
}

/** JSON text of a runtime config or runtime.json, as linuxkit writes them; a bigint written as the exact integer it is (JSON.stringify cannot). */
export function ociJson(v: unknown): string {
  // indented by 4, as linuxkit writes it
  const json = JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? `\u0000bigint:${x}` : x), 4);
  return `${json.replace(/"\\u0000bigint:(\d+)"/g, "$1")}\n`;
}

const FILE_NAMES = new Set(["hosts", "hostname", "localtime", "passwd", "group", "shadow", "machine-id"]);

/**
 * Mount points that must exist in the container root: on a read-only root file
 * system (squashfs) runc cannot create them at run time. A bind of something
 * that looks like a file (a name with an extension, or hosts, passwd …) gets an
 * empty file, anything else a directory.
 */
export function mountPoints(config: Record<string, unknown>): { path: string; file: boolean }[] {
  return ((config.mounts as Mount[]) ?? [])
    .filter((m) => m.destination && m.destination !== "/")
    .map((m) => {
      const base = m.destination.split("/").pop() ?? "";
      return { path: m.destination, file: m.type === "bind" && (FILE_NAMES.has(base) || /\.[a-z0-9]+$/i.test(base)) };
    });
}
