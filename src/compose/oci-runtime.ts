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

/** The capabilities a container gets when neither its image nor the yml names any (Docker's default set, as linuxkit uses). */
const DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"];

const DEFAULT_MOUNTS: Mount[] = [
  { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "nodev", "noexec", "relatime"] },
  { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
  { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
  { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777"] },
  { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
  { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
  { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] },
];

const DEFAULT_MASKED = ["/proc/kcore", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"];
const DEFAULT_READONLY = ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

function capName(c: string): string {
  const u = c.toUpperCase();
  return u.startsWith("CAP_") ? u : `CAP_${u}`;
}

function caps(list: string[]): string[] {
  if (list.some((c) => c.toLowerCase() === "all")) return ALL_CAPS;
  return [...new Set(list.map(capName))].sort();
}

/** "src:dst[:opt,opt]" → a bind mount (linuxkit's binds syntax). */
function bindMount(b: string): Mount {
  const [source = "", destination = source, opts] = b.split(":");
  const options = ["rbind", ...(opts ? opts.split(",") : ["rw"]), "rprivate"];
  return { destination, type: "bind", source, options };
}

function tmpfsMount(t: string): Mount {
  const [destination = "", opts] = t.split(":");
  return { destination, type: "tmpfs", source: "tmpfs", options: opts ? opts.split(",") : ["nosuid", "nodev", "noexec"] };
}

const RLIMIT_RE = /^(RLIMIT_)?([A-Za-z]+),(-?\d+|unlimited),(-?\d+|unlimited)$/;

export interface Ids {
  uid: number;
  gid: number;
  additionalGids: number[];
}

/**
 * A container's OCI runtime config (config.json), in the manner of linuxkit's
 * ConfigToOCI: the image's config and its org.mobyproject.config label give
 * the defaults, the yml entry overrides them; "binds" replaces the label's
 * binds and "binds.add" appends to them (likewise capabilities.add).
 */
export function runtimeConfig(c: Container, image: ImageConfigJson, label: ImageLabelConfig, ids: Ids, cgroupsPath: string): Record<string, unknown> {
  const pick = <K extends keyof ImageLabelConfig>(k: K): ImageLabelConfig[K] => (c[k as keyof Container] as ImageLabelConfig[K]) ?? label[k];
  const ic = image.config ?? {};
  const args = pick("command") ?? [...(ic.Entrypoint ?? []), ...(ic.Cmd ?? [])];
  const env = [...(ic.Env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]), ...(label.env ?? []), ...(c.env ?? [])];
  const capList = caps([...(pick("capabilities") ?? DEFAULT_CAPS), ...(label["capabilities.add"] ?? []), ...(c["capabilities.add"] ?? [])]);
  const ambient = caps(pick("ambient") ?? []);

  const mounts = new Map<string, Mount>(DEFAULT_MOUNTS.map((m) => [m.destination, m]));
  for (const m of pick("mounts") ?? []) mounts.set(m.destination ?? "", { destination: m.destination ?? "", type: m.type ?? "bind", source: m.source ?? "", options: m.options ?? [] });
  for (const b of [...(pick("binds") ?? []), ...(label["binds.add"] ?? []), ...(c["binds.add"] ?? [])]) {
    const m = bindMount(b);
    mounts.set(m.destination, m);
  }
  for (const t of pick("tmpfs") ?? []) {
    const m = tmpfsMount(t);
    mounts.set(m.destination, m);
  }

  const namespaces: { type: string; path?: string }[] = [];
  const ns = (type: string, v: string | undefined) => {
    if (v === "host") return;
    namespaces.push(v ? { type, path: v } : { type });
  };
  ns("pid", pick("pid"));
  ns("network", pick("net"));
  ns("ipc", pick("ipc"));
  ns("uts", pick("uts"));
  ns("mount", undefined);
  if (pick("userns")) ns("user", pick("userns"));

  const rlimits = (pick("rlimits") ?? []).map((r) => {
    const m = RLIMIT_RE.exec(r.trim());
    if (!m) throw new Error(`rlimit '${r}' is not NAME,SOFT,HARD`);
    const v = (s: string) => (s === "unlimited" ? 2 ** 64 - 1 : Number(s));
    return { type: `RLIMIT_${m[2]!.toUpperCase()}`, soft: v(m[3]!), hard: v(m[4]!) };
  });

  const devices = (pick("devices") ?? []).map((d) => ({
    path: d.path,
    type: d.type,
    major: d.major,
    minor: d.minor,
    fileMode: d.mode ? parseInt(d.mode, 8) : undefined,
  }));

  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: ids.uid, gid: ids.gid, ...(ids.additionalGids.length ? { additionalGids: ids.additionalGids } : {}) },
      args,
      env,
      cwd: pick("cwd") ?? (ic.WorkingDir || "/"),
      capabilities: { bounding: capList, effective: capList, permitted: capList, ...(ambient.length ? { ambient, inheritable: ambient } : {}) },
      ...(rlimits.length ? { rlimits } : {}),
      noNewPrivileges: pick("noNewPrivileges") ?? false,
      ...(pick("oomScoreAdj") !== undefined ? { oomScoreAdj: pick("oomScoreAdj") } : {}),
    },
    root: { path: "rootfs", readonly: pick("readonly") ?? false },
    hostname: pick("hostname") ?? c.name,
    mounts: [...mounts.values()].sort((a, b) => (a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0)),
    linux: {
      namespaces,
      ...(pick("uidMappings") ? { uidMappings: pick("uidMappings") } : {}),
      ...(pick("gidMappings") ? { gidMappings: pick("gidMappings") } : {}),
      ...(devices.length ? { devices } : {}),
      ...(pick("resources") ? { resources: pick("resources") } : {}),
      ...(pick("sysctl") ? { sysctl: pick("sysctl") } : {}),
      cgroupsPath: pick("cgroupsPath") ?? cgroupsPath,
      ...(pick("rootfsPropagation") ? { rootfsPropagation: pick("rootfsPropagation") } : {}),
      maskedPaths: pick("maskedPaths") ?? DEFAULT_MASKED,
      readonlyPaths: pick("readonlyPaths") ?? DEFAULT_READONLY,
    },
    ...(pick("annotations") ? { annotations: pick("annotations") } : {}),
  };
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
