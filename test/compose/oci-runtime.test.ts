import { describe, expect, it } from "vitest";
import type { Container } from "../../src/config/image-spec.js";
import { ociJson, runtimeConfig } from "../../src/compose/oci-runtime.js";
import { validateRuntimeConfig } from "../helpers/oci-runtime-schema.js";

// linuxkit's ConfigToOCI rules (moby/config.go), each checked on what kiln writes
type Config = {
  process: { args: string[]; env: string[]; cwd: string; capabilities: Record<string, string[]>; rlimits?: { type: string; soft: number; hard: number }[] };
  hostname?: string;
  mounts: { destination: string; type: string; source: string; options: string[] }[];
  linux: { namespaces: { type: string; path?: string }[]; devices?: object[]; resources?: { devices?: object[] } };
};
const ids = { uid: 0, gid: 0, additionalGids: [] };
const image = { config: { Env: ["PATH=/bin", "IMG=1"], Entrypoint: ["/entry"], Cmd: ["arg"], WorkingDir: "/work" } };
const config = (c: Partial<Container>, label: object = {}, img: object = image): Config => {
  const json = ociJson(runtimeConfig({ name: "c", image: "x", ...c }, img, label, ids));
  const parsed = JSON.parse(json) as Config;
  expect(validateRuntimeConfig(parsed)).toEqual([]);
  return parsed;
};

describe("config.json as linuxkit writes it", () => {
  it("takes each field from the yml, else the image's label, else linuxkit's default; lists replace", () => {
    expect(config({}).process).toMatchObject({ args: ["/entry", "arg"], env: ["PATH=/bin", "IMG=1"], cwd: "/work" });
    expect(config({ env: ["A=1"] }, { env: ["L=1"] }).process.env).toEqual(["A=1"]);
    expect(config({}, { env: ["L=1"], command: ["/label"] }).process).toMatchObject({ env: ["L=1"], args: ["/label"] });
    expect(config({ cwd: "" }, {}, { config: {} }).process.cwd).toBe("/");
    // "" in the yml is not set, as in linuxkit: the label's value applies
    const empty = config({ cwd: "", hostname: "", net: "" }, { cwd: "/lab", hostname: "lab", net: "new" });
    expect(empty.process.cwd).toBe("/lab");
    expect(empty.hostname).toBe("lab");
    expect(empty.linux.namespaces[0]).toEqual({ type: "network" });
  });

  it("gives no capabilities unless named; 'all' and 'none' alone; capabilities.add appends to the label's", () => {
    expect(config({}).process.capabilities.bounding).toEqual([]);
    expect(config({ capabilities: ["all"] }).process.capabilities.bounding).toContain("CAP_SYS_ADMIN");
    expect(config({ capabilities: ["none"] }).process.capabilities.effective).toEqual([]);
    const added = config({ "capabilities.add": ["CAP_NET_ADMIN"] }, { capabilities: ["CAP_SYS_ADMIN"] }).process.capabilities;
    expect(added.effective).toEqual(["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]);
    expect(added.bounding).toEqual(["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]);
    // the yml's own list wins over the label's and its .add
    expect(config({ capabilities: ["sys_time"], "capabilities.add": ["CAP_NET_ADMIN"] }, { capabilities: ["CAP_SYS_ADMIN"] }).process.capabilities.effective).toEqual(["CAP_SYS_TIME"]);
    expect(() => config({ capabilities: ["CAP_FLY"] })).toThrow(/unknown capability 'CAP_FLY'/);
  });

  it("shares the host's network, IPC and UTS unless told; new PID, mount and cgroup namespaces; 'none' is an empty network; a path joins", () => {
    const types = (c: Partial<Container>) => config(c).linux.namespaces;
    expect(types({})).toEqual([{ type: "pid" }, { type: "mount" }, { type: "cgroup" }]);
    expect(types({ net: "new", ipc: "new", uts: "new", pid: "host" })).toEqual([{ type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, { type: "cgroup" }]);
    expect(types({ net: "none" })[0]).toEqual({ type: "network" });
    expect(types({ net: "/run/netns/x", uts: "root" })[0]).toEqual({ type: "network", path: "/run/netns/x" });
    // no host name unless set (runc refuses one without a UTS namespace)
    expect(config({}).hostname).toBeUndefined();
    expect(config({ hostname: "box", uts: "new" }).hostname).toBe("box");
  });

  it("mounts: linuxkit's defaults, binds rw,rbind,rshared (or the given options and rbind), mounts completed from their type", () => {
    const m = config({ binds: ["/a:/a", "/b:/b:ro,rprivate"], tmpfs: ["/t:size=1m"], mounts: [{ type: "cgroup", options: ["rw"] }, { source: "mqueue" }] }).mounts;
    const at = (d: string) => m.find((x) => x.destination === d);
    expect(m.map((x) => x.destination)).toEqual(["/a", "/b", "/dev", "/dev/mqueue", "/dev/pts", "/proc", "/sys", "/sys/fs/cgroup", "/t"]);
    expect(at("/a")).toEqual({ destination: "/a", type: "bind", source: "/a", options: ["rw", "rbind", "rshared"] });
    expect(at("/b")?.options).toEqual(["ro", "rprivate", "rbind"]);
    expect(at("/sys/fs/cgroup")).toEqual({ destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["rw"] });
    expect(at("/dev/mqueue")).toMatchObject({ type: "mqueue", source: "mqueue" });
    expect(at("/t")?.options).toEqual(["size=1m"]);
    expect(config({ readonly: true }).mounts.find((x) => x.destination === "/sys")?.options).toContain("ro");
    expect(() => config({ mounts: [{ destination: "/x" }] })).toThrow(/missing type/);
    expect(() => config({ binds: ["/only"] })).toThrow(/not SOURCE:DESTINATION/);
  });

  it("rlimits: spaces allowed, 'unlimited' is 2^64-1 written exactly", () => {
    const json = ociJson(runtimeConfig({ name: "c", image: "x", rlimits: ["nofile, unlimited, unlimited", "RLIMIT_CORE,0,1024"] }, image, {}, ids));
    expect(json).toContain('"soft": 18446744073709551615');
    expect(JSON.parse(json.replace(/18446744073709551615/g, "-1")).process.rlimits).toEqual([
      { type: "RLIMIT_NOFILE", soft: -1, hard: -1 },
      { type: "RLIMIT_CORE", soft: 0, hard: 1024 },
    ]);
    expect(() => config({ rlimits: ["nofile,1"] })).toThrow(/not NAME,SOFT,HARD/);
    expect(() => config({ rlimits: ["files,1,2"] })).toThrow(/unknown limit files/);
  });

  it("devices: a node with a cgroup rule, or `path: all` as a rule for every device of the type", () => {
    const linux = config({ devices: [{ path: "/dev/fuse", type: "c", major: 10, minor: 229, mode: "0666" }, { path: "all", type: "b" }] }).linux;
    expect(linux.devices).toEqual([{ path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 0o666 }]);
    expect(linux.resources?.devices).toEqual([
      { allow: true, type: "c", major: 10, minor: 229, access: "rwm" },
      { allow: true, type: "b", access: "rwm" },
    ]);
    expect(() => config({ devices: [{ path: "/dev/x", type: "c", major: 1, minor: 1 }] })).toThrow(/octal mode/);
  });
});
