import { execa } from "execa";
import { readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, kiln, REPO, tempDir, writeProject } from "../helpers/kiln.js";
import { validateRuntimeConfig } from "../helpers/oci-runtime-schema.js";
import { readTar } from "../helpers/layers.js";
import { EVELIKE } from "./evelike.js";

async function project(): Promise<{ dir: string; store: string }> {
  return { dir: await writeProject(EVELIKE), store: await tempDir() };
}

describe("image specs", () => {
  it("accepts real linuxkit example files as they are", async () => {
    const dir = join(REPO, "test/fixtures/third_party/linuxkit");
    const r = await kiln(["validate", join(dir, "sshd.yml"), join(dir, "volumes.yml"), join(dir, "addbinds.yml")]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("3 files OK");
  });

  it("catches typos in a linuxkit file with the line and a suggestion", async () => {
    const text = (await readFile(join(REPO, "test/fixtures/third_party/linuxkit/sshd.yml"), "utf8")).replace("    capabilities:", "    capabilites:").replace("  cmdline:", "  cmdlin:");
    const dir = await writeProject({ "sshd.yml": text });
    const r = await kiln(["validate", join(dir, "sshd.yml")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown key 'cmdlin' in kernel\n\s+--> .*sshd\.yml:3:3\n\s+hint: did you mean 'cmdline'\?/);
    expect(r.stderr).toMatch(/unknown key 'capabilites' in services\[2\]\n\s+--> .*sshd\.yml:19:5\n\s+hint: did you mean 'capabilities'\?/);
  });
});

describe("composing rootfs.tar", () => {
  it("builds the referenced packages first, resolves placeholders and writes the composed yml", async () => {
    const { dir, store } = await project();
    const r = await kiln(["-C", dir, "--json", "build", "rootfs"], { store });
    expect(r.code, r.stderr).toBe(0);
    const yml = await readFile(join(dir, "images/out/rootfs-kvm-generic.yml"), "utf8");
    expect(yml).toMatch(/image: kiln\/getty:[0-9a-f]{40}/);
    expect(yml).toMatch(/- kiln\/init:[0-9a-f]{40}/);
    expect(yml).not.toMatch(/_TAG/);
    expect(await readFile(join(dir, "images/out/rootfs-kvm-generic.yml.in"), "utf8")).toContain("GETTY_TAG");
    expect(yml).not.toContain("xenstored");
    // only the packages the variant refers to were built (xentools is xen-only)
    const built = r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { type: string; target?: string }).filter((e) => e.type === "done").map((e) => e.target);
    expect(built).not.toContain("pkg/xentools");
    expect(built).toContain("pkg/getty");
  });

  it("lays the tar out as linuxkit does, with numeric owners, device nodes and links", async () => {
    const { dir, store } = await project();
    expect((await kiln(["-C", dir, "build", "rootfs"], { store })).code).toBe(0);
    const tarPath = join(dir, "out/amd64/kvm-generic/rootfs.tar");
    const list = (await execa("tar", ["-tvf", tarPath, "--numeric-owner"])).stdout;
    expect(list).toMatch(/^-rw-r--r-- 0\/0 +\d+ 2023-11-14 \d\d:\d\d boot\/kernel$/m);
    expect(list).toMatch(/^-rw-r--r-- 0\/0 +13 .* boot\/cmdline$/m);
    expect(list).toMatch(/^-rw-r--r-- 0\/0 .* lib\/modules\/6\.1\.0\/kernel\/virtio_blk\.ko$/m);
    expect(list).toMatch(/^crw------- 0\/0 +4,73 .* dev\/ttyS9$/m);
    // what linuxkit leaves out of an image (the builder's console and host name) and what it adds
    expect(list).not.toMatch(/ dev\/console$| etc\/hostname$/m);
    expect(list).toMatch(/^lrwxrwxrwx 0\/0 .* etc\/mtab -> \/proc\/mounts$/m);
    expect(list).toMatch(/^lrwxrwxrwx 0\/0 .* etc\/resolv\.conf -> \/run\/resolvconf\/resolv\.conf$/m);
    expect(list).toMatch(/^drwxr-xr-x 0\/0 .* proc\/$/m);
    expect(list).toMatch(/^hrwxr-xr-x 0\/0 .* bin\/sh link to bin\/busybox$/m);
    expect(list).toMatch(/^lrwxrwxrwx 0\/0 .* bin\/ls -> busybox$/m);
    // a files folder is 0700 unless told; folders made above it get its owner and mode (linuxkit's filesystem())
    expect(list).toMatch(/^drwx------ 1\/1 .* var\/lib\/owned\/$/m);
    expect(list).toMatch(/^drwx------ 1\/1 .* var\/lib\/$/m);
    // a read-only container's image in rootfs/; a writable one's in lower/, its root an overlay made at boot (runtime.json)
    expect(list).toMatch(/^-rwxr-xr-x 0\/0 .* containers\/onboot\/000-sysctl\/rootfs\/sysctl\.sh$/m);
    expect(list).toMatch(/^-rwxr-xr-x 0\/0 .* containers\/services\/getty\/lower\/sbin\/getty$/m);
    expect(list).toMatch(/^drwxr-xr-x 0\/0 .* containers\/services\/getty\/rootfs\/$/m);
    expect(list).toMatch(/^drwxr-xr-x 0\/0 .* containers\/services\/getty\/tmp\/$/m);
    expect(list).not.toMatch(/containers\/services\/getty\/rootfs\/./m);
    expect(list).toMatch(/containers\/services\/getty\/config\.json$/m);
    // sorted, and every mtime is SOURCE_DATE_EPOCH
    const entries = await readTar(tarPath);
    const names = entries.map((e) => e.name.replace(/\/$/, ""));
    expect(names).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(new Set(entries.map((e) => e.mtime))).toEqual(new Set([1700000000]));
    const by = Object.fromEntries(entries.map((e) => [e.name, e]));
    expect(by["etc/hv"]?.body).toBe("kvm on generic");
    expect(by["etc/hv"]?.mode).toBe(0o600);
    expect(by["boot/cmdline"]?.body).toBe("console=ttyS0");
    expect(by["etc/linuxkit.yml"]?.body).toMatch(/image: kiln\/getty:[0-9a-f]{40}/);
    expect(by["etc/hosts"]?.body).toMatch(/^127\.0\.0\.1\s+localhost\n::1\s+localhost ip6-localhost ip6-loopback\n/);
    expect(by["containers/services/getty/lower/etc/resolv.conf"]?.body).toBe("\n# no resolv.conf configured\n");
    type Runtime = { mounts: { source?: string; type?: string; destination: string; options?: string[] }[]; mkdir: string[]; bindNS: object };
    const rt = (name: string) => JSON.parse(by[name]!.body) as Runtime;
    expect(rt("containers/onboot/000-sysctl/runtime.json").mounts).toEqual([
      { source: "/containers/onboot/000-sysctl/rootfs", destination: "/containers/onboot/000-sysctl/rootfs", options: ["bind"] },
    ]);
    const g = "/containers/services/getty";
    expect(rt("containers/services/getty/runtime.json")).toMatchObject({
      mounts: [
        { source: "tmpfs", type: "tmpfs", destination: `${g}/tmp` },
        { destination: `${g}/tmp`, options: ["remount", "private"] },
        { source: "overlay", type: "overlay", destination: `${g}/rootfs`, options: [`lowerdir=${g}/lower`, `upperdir=${g}/tmp/upper`, `workdir=${g}/tmp/work`] },
      ],
      mkdir: [],
      // every namespace named, from the yml or the image's label (here the label's net)
      bindNS: { cgroup: "", ipc: "", mnt: "", net: "/run/netns/lab", pid: "", user: "", uts: "" },
    });
  });

  it("generates runtime config.json files that the OCI runtime-spec schema accepts", async () => {
    const { dir, store } = await project();
    expect((await kiln(["-C", dir, "build", "rootfs"], { store })).code).toBe(0);
    const entries = await readTar(join(dir, "out/amd64/kvm-generic/rootfs.tar"));
    type RuntimeConfig = {
      process: { args: string[]; env: string[]; capabilities: { bounding: string[] } };
      hostname?: string;
      root: { readonly: boolean };
      mounts: { destination: string; options: string[] }[];
      linux: { namespaces: { type: string }[] };
    };
    const getty = JSON.parse(entries.find((e) => e.name === "containers/services/getty/config.json")!.body) as RuntimeConfig;
    const sysctl = JSON.parse(entries.find((e) => e.name === "containers/onboot/000-sysctl/config.json")!.body) as RuntimeConfig;
    expect(validateRuntimeConfig(getty)).toEqual([]);
    expect(validateRuntimeConfig(sysctl)).toEqual([]);
    expect(getty.process.args).toEqual(["/sbin/getty", "ttyS0"]);
    expect(getty.process.env).toEqual(["PATH=/sbin:/bin", "INSECURE=true"]);
    const dests = getty.mounts.map((m) => m.destination);
    expect(dests).toEqual(expect.arrayContaining(["/proc", "/etc/resolv.conf", "/var/tmp"]));
    expect(sysctl.process.args).toEqual(["/sysctl.sh"]);
    expect(sysctl.process.capabilities.bounding).toEqual(["CAP_SYS_ADMIN"]);
    expect(sysctl.linux.namespaces.map((n) => n.type)).toEqual(["mount", "cgroup"]);
    expect(sysctl.root.readonly).toBe(true);
    // linuxkit's defaults: the host's network, IPC and UTS, new PID, mount and cgroup namespaces; no capabilities, no host name
    expect(getty.linux.namespaces.map((n) => n.type)).toEqual(["pid", "mount", "cgroup"]);
    expect(getty.process.capabilities.bounding).toEqual([]);
    expect(getty.hostname).toBeUndefined();
    expect(getty.root.readonly).toBe(false);
    expect(getty.mounts.find((m) => m.destination === "/var/tmp")?.options).toEqual(["rw", "rbind", "rshared"]);
    // bind targets exist in the container's image, whose root may be read-only at run time
    expect(entries.some((e) => e.name === "containers/services/getty/lower/var/tmp/")).toBe(true);
  });

  it("applies the HV and platform modifiers per variant, and accepts EVE's target spellings", async () => {
    const { dir, store } = await project();
    const xen = await kiln(["-C", dir, "build", "rootfs-xen", "PLATFORM=rt"], { store });
    expect(xen.code, xen.stderr).toBe(0);
    const yml = await readFile(join(dir, "images/out/rootfs-xen-rt.yml"), "utf8");
    expect(yml).toMatch(/name: xenstored\n\s+image: kiln\/xentools:[0-9a-f]{40}/);
    expect(yml).toContain("cmdline: console=ttyS0 rt");
    const entries = await readTar(join(dir, "out/amd64/xen-rt/rootfs.tar"));
    expect(entries.find((e) => e.name === "etc/hv")?.body).toBe("xen on rt");
    expect(entries.some((e) => e.name === "containers/services/xenstored/lower/usr/sbin/xenstored")).toBe(true);
    const flavor = await kiln(["-C", dir, "build", "rootfs", "--set", "PLATFORM=rt", "--set", "FLAVOR=evaluation"], { store });
    expect(flavor.code, flavor.stderr).toBe(0);
    // the flavor's modifier, then the platform's shared one (EVE's find-modifiers-rootfs applies both)
    expect(await readFile(join(dir, "images/out/rootfs-kvm-rt-evaluation.yml"), "utf8")).toMatch(/cmdline: console=ttyS0 eval rt\n/);
  });

  it("refuses bad knob values and combinations before any work", async () => {
    const { dir, store } = await project();
    const combo = await kiln(["-C", dir, "build", "rootfs", "PLATFORM=jetson"], { store });
    expect(combo.code).toBe(2);
    expect(combo.stderr).toMatch(/error\[E_BAD_VARIANT\]: PLATFORM=jetson needs ZARCH=arm64\n\s+--> kiln\.yml:9:7/);
    const typo = await kiln(["-C", dir, "build", "rootfs", "HV=kvmm"], { store });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/E_BAD_VARIANT\]: HV=kvmm is not one of: kvm, xen[\s\S]*did you mean 'kvm'\?/);
    const knob = await kiln(["-C", dir, "build", "rootfs", "PLATFROM=rt"], { store });
    expect(knob.code).toBe(2);
    expect(knob.stderr).toMatch(/E_USAGE\]: unknown knob PLATFROM[\s\S]*did you mean 'PLATFORM'\?/);
    // with packages or a good image target before the bad one: still nothing built
    const later = await kiln(["-C", dir, "build", "sysctl", "rootfs.tar", "rootfs-bogus"], { store });
    expect(later.code).toBe(2);
    expect(later.stderr).toMatch(/E_BAD_VARIANT\]: HV=bogus is not one of: kvm, xen/);
    await expect(stat(join(dir, "out"))).rejects.toThrow();
    await expect(readdir(join(store, "blobs/sha256"))).resolves.toEqual([]);
    const arm = await kiln(["-C", dir, "plan", "ZARCH=arm64"], { store });
    expect(arm.code, arm.stderr).toBe(0);
    // EVE's Makefile also takes the kernel's names: ZARCH=aarch64 is arm64, x86_64 amd64
    const aarch64 = await kiln(["-C", dir, "--json", "plan", "ZARCH=aarch64"], { store });
    expect(aarch64.code, aarch64.stderr).toBe(0);
    expect(aarch64.stdout).toMatch(/^{"arch":"arm64"/m);
  });

  it("files entries follow linuxkit's rules: one kind of content, metadata as yaml or json, ids by container name; boot/cmdline always", async () => {
    const spec = (files: string, cmdline = '  cmdline: "console=ttyS0"\n') =>
      EVELIKE["images/rootfs.yml.in"]!.replace('  cmdline: "console=ttyS0"\n', cmdline).replace(/files:\n[\s\S]*$/, `files:\n${files}`);
    const store = await tempDir();
    const bad = async (files: string, message: RegExp) => {
      const dir = await writeProject({ ...EVELIKE, "images/rootfs.yml.in": spec(files) });
      const r = await kiln(["-C", dir, "build", "rootfs.tar"], { store });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(message);
      await expect(stat(join(dir, "out/amd64/kvm-generic/rootfs.tar"))).rejects.toThrow();
    };
    await bad("  - path: etc/a\n    contents: x\n    source: a.txt\n", /files entry etc\/a: contents and source: give one/);
    await bad("  - path: etc/d\n    directory: true\n    contents: x\n", /files entry etc\/d: a directory cannot have contents/);
    await bad("  - path: etc/e\n", /files entry etc\/e: no contents, source or metadata/);
    await bad("  - path: etc/m\n    metadata: toml\n", /metadata 'toml' is not one of: yaml, json/);
    await bad("  - path: /\n    directory: true\n", /files entry \/: the root folder itself cannot be a files entry/);
    const dir = await writeProject({
      ...EVELIKE,
      "images/rootfs.yml.in": spec(
        "  - path: etc/spec.json\n    metadata: json\n  - path: etc/by-name\n    contents: x\n    uid: getty\n    gid: sysctl\n  - path: opt/missing/file\n    source: /nonexistent/file\n    optional: true\n",
        "  cmdline: \"\"\n",
      ),
    });
    const r = await kiln(["-C", dir, "build", "rootfs.tar"], { store });
    expect(r.code, r.stderr).toBe(0);
    const by = Object.fromEntries((await readTar(join(dir, "out/amd64/kvm-generic/rootfs.tar"))).map((e) => [e.name, e]));
    expect((JSON.parse(by["etc/spec.json"]!.body) as { services: { name: string }[] }).services[0]!.name).toBe("getty");
    // linuxkit's ids for names: 100, 101 … for the containers in yml order (onboot sysctl, then services getty)
    expect(by["etc/by-name"]).toMatchObject({ uid: 101, gid: 100, mode: 0o600 });
    expect(by["boot/cmdline"]).toMatchObject({ type: "file", body: "" });
    // an optional source that is not there leaves nothing, not even its folders
    expect(Object.keys(by).filter((n) => n.startsWith("opt"))).toEqual([]);
  });

  it("composes every section linuxkit has: kernel binary/ucode/tar, @pkg: refs, onshutdown, volumes, symlinks, and the container fields in config.json", async () => {
    const spec = [
      "kernel:",
      "  image: KERNEL_TAG",
      "  binary: vmlinuz",
      "  ucode: ucode.cpio",
      "  tar: none",
      "init:",
      "  - INIT_TAG",
      "  - \"@pkg:pkg/devnodes\"",
      "onboot:",
      "  - name: sysctl",
      "    image: SYSCTL_TAG",
      "    sysctl: {net.ipv4.ip_forward: \"1\"}",
      "    noNewPrivileges: true",
      "    rootfsPropagation: shared",
      "    cgroupsPath: podruntime/sysctl",
      "    oomScoreAdj: -800",
      "    additionalGids: [down, 7]",
      "onshutdown:",
      "  - name: down",
      "    image: SYSCTL_TAG",
      "    command: [/sysctl.sh, stop]",
      "volumes:",
      "  - name: vol",
      "    image: XENTOOLS_TAG",
      "  - name: scratch",
      "files:",
      "  - path: etc/link",
      "    symlink: /etc/hosts",
      "",
    ].join("\n");
    const kernel = EVELIKE["pkg/kernel/build.yml"]!.replace(
      '  printf "MZ fake kernel for $KILN_ARCH" > "$DESTDIR/kernel"',
      '  printf "MZ fake kernel for $KILN_ARCH" > "$DESTDIR/kernel"\n  printf "MZ vmlinuz" > "$DESTDIR/vmlinuz"\n  printf "ucode" > "$DESTDIR/ucode.cpio"',
    );
    const dir = await writeProject({ ...EVELIKE, "images/rootfs.yml.in": spec, "pkg/kernel/build.yml": kernel });
    const r = await kiln(["-C", dir, "build", "rootfs.tar"], { store: await tempDir() });
    expect(r.code, r.stderr).toBe(0);
    const entries = await readTar(join(dir, "out/amd64/kvm-generic/rootfs.tar"));
    const by = Object.fromEntries(entries.map((e) => [e.name, e]));
    expect(by["boot/kernel"]?.body).toBe("MZ vmlinuz");
    expect(by["boot/ucode.cpio"]?.body).toBe("ucode");
    expect(entries.some((e) => e.name.startsWith("lib/modules/"))).toBe(false); // tar: none
    expect(by["dev/ttyS9"]?.type).toBe("character-device"); // from @pkg:pkg/devnodes
    expect(by["etc/link"]).toMatchObject({ type: "symlink", linkname: "/etc/hosts" });
    // the onshutdown container uses onboot's image: mounted from there, not unpacked again
    expect(by["containers/onboot/000-sysctl/rootfs/sysctl.sh"]?.type).toBe("file");
    expect((JSON.parse(by["containers/onshutdown/000-down/runtime.json"]!.body) as { mounts: { source: string }[] }).mounts[0]!.source).toBe("/containers/onboot/000-sysctl/rootfs");
    expect(by["containers/volumes/vol/lower/usr/sbin/xenstored"]?.body).toBe("xen");
    expect(by["containers/volumes/scratch/"]?.type).toBe("directory");
    type Config = { process: { args: string[]; noNewPrivileges: boolean; oomScoreAdj: number; user: { additionalGids: number[] } }; linux: Record<string, unknown> };
    const down = JSON.parse(by["containers/onshutdown/000-down/config.json"]!.body) as Config;
    expect(down.process.args).toEqual(["/sysctl.sh", "stop"]);
    const sysctl = JSON.parse(by["containers/onboot/000-sysctl/config.json"]!.body) as Config;
    expect(validateRuntimeConfig(sysctl)).toEqual([]);
    // a container's name as a group: its linuxkit id (onboot sysctl 100, onshutdown down 101)
    expect(sysctl.process).toMatchObject({ noNewPrivileges: true, oomScoreAdj: -800, user: { additionalGids: [101, 7] } });
    expect(sysctl.linux).toMatchObject({ sysctl: { "net.ipv4.ip_forward": "1" }, rootfsPropagation: "shared", cgroupsPath: "podruntime/sysctl" });
  });

  it("unpacks an image that several containers use once, the others mounting it from the first (linuxkit's dupMap)", async () => {
    const yml = EVELIKE["images/rootfs.yml.in"]!.replace(
      "files:\n",
      "  - name: getty2\n    image: GETTY_TAG\n    readonly: true\n    runtime: {bindNS: {pid: /run/pidns/b}}\n  - name: getty3\n    image: GETTY_TAG\n    binds: [/srv:/srv]\nfiles:\n",
    );
    const dir = await writeProject({ ...EVELIKE, "images/rootfs.yml.in": yml });
    const r = await kiln(["-C", dir, "build", "rootfs.tar"], { store: await tempDir() });
    expect(r.code, r.stderr).toBe(0);
    const entries = await readTar(join(dir, "out/amd64/kvm-generic/rootfs.tar"));
    const names = entries.map((e) => e.name);
    expect(names).toContain("containers/services/getty/lower/sbin/getty");
    expect(names.filter((n) => n.startsWith("containers/services/getty2/"))).toEqual(["containers/services/getty2/", "containers/services/getty2/config.json", "containers/services/getty2/rootfs/", "containers/services/getty2/runtime.json"]);
    type Runtime = { mounts: { options?: string[] }[]; bindNS: Record<string, string> };
    const rt = (n: string) => JSON.parse(entries.find((e) => e.name === `containers/services/${n}/runtime.json`)!.body) as Runtime;
    expect(rt("getty2").mounts).toEqual([{ source: "/containers/services/getty/lower", destination: "/containers/services/getty2/rootfs", options: ["bind"] }]);
    // runtime fields namespace by namespace: the yml's pid beside the label's net
    expect(rt("getty2").bindNS).toMatchObject({ net: "/run/netns/lab", pid: "/run/pidns/b", uts: "" });
    // a writable user of the same image: its overlay's lower folder is the first's; its mount points go there too
    expect(rt("getty3").mounts[2]!.options).toEqual(["lowerdir=/containers/services/getty/lower", "upperdir=/containers/services/getty3/tmp/upper", "workdir=/containers/services/getty3/tmp/work"]);
    expect(names).toContain("containers/services/getty/lower/srv/");
    expect(names.filter((n) => n.startsWith("containers/services/getty3/"))).toEqual(["containers/services/getty3/", "containers/services/getty3/config.json", "containers/services/getty3/rootfs/", "containers/services/getty3/runtime.json", "containers/services/getty3/tmp/"]);
  });

  it("names unknown placeholders with close matches", async () => {
    const files = { ...EVELIKE, "images/rootfs.yml.in": EVELIKE["images/rootfs.yml.in"]!.replace("SYSCTL_TAG", "SYSCTRL_TAG") };
    const dir = await writeProject(files);
    const r = await kiln(["-C", dir, "build", "rootfs"], { store: await tempDir() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/E_UNKNOWN_PLACEHOLDER\]: images\/out\/rootfs-kvm-generic\.yml\.in refers to packages that do not exist: SYSCTRL_TAG \(did you mean SYSCTL_TAG\?\)/);
  });

  it("defaults ROOTFS_VERSION to git describe, marking a dirty tree, and to 'snapshot' outside git", async () => {
    const { dir, store } = await project();
    const version = async (...knobs: string[]) => {
      const r = await kiln(["-C", dir, "--json", "build", "rootfs.tar", ...knobs], { store });
      expect(r.code, r.stderr).toBe(0);
      const prov = JSON.parse(await readFile(join(dir, "out/amd64/kvm-generic/rootfs.tar.provenance.json"), "utf8")) as {
        predicate: { buildDefinition: { externalParameters: { ROOTFS_VERSION: string } } };
      };
      return prov.predicate.buildDefinition.externalParameters.ROOTFS_VERSION;
    };
    expect(await version()).toBe("snapshot"); // a temp folder: no git
    const git = (...args: string[]) => execa("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", ...args], { cwd: dir });
    await writeFile(join(dir, ".gitignore"), "out/\nimages/out/\n");
    await writeFile(join(dir, "NOTES"), "one\n");
    await git("init", "-q");
    await git("add", "-A");
    await git("commit", "-q", "-m", "first");
    await git("tag", "v1.2");
    expect(await version()).toBe("v1.2");
    await writeFile(join(dir, "NOTES"), "two\n"); // a tracked file changed: the tree is dirty
    expect(await version()).toBe("v1.2-dirty");
    expect(await version("ROOTFS_VERSION=7.0")).toBe("7.0"); // given, it wins
  });

  it("lists the variant matrix", async () => {
    const { dir } = await project();
    const r = await kiln(["-C", dir, "--json", "variants"]);
    expect(r.code, r.stderr).toBe(0);
    const vs = JSON.parse(r.stdout) as { arch: string; platform: string; flavor?: string }[];
    // 2 archs × 2 hv × 3 platforms × (no flavor | evaluation), less jetson on amd64
    expect(vs).toHaveLength(2 * 2 * 3 * 2 - 2 * 2);
    expect(vs.some((v) => v.arch === "amd64" && v.platform === "jetson")).toBe(false);
    // a platform that needs another format is listed with the formats it allows; with no variants.hv, the arch's default HV alone
    const rules = EVELIKE["kiln.yml"]!.replace("  hv: [kvm, xen]\n", "").replace("  rules:\n", "  rules:\n    - when: {platform: rt}\n      require: {format: ext4}\n");
    const dir2 = await writeProject({ ...EVELIKE, "kiln.yml": rules });
    const r2 = await kiln(["-C", dir2, "--json", "variants"]);
    expect(r2.code, r2.stderr).toBe(0);
    const vs2 = JSON.parse(r2.stdout) as { arch: string; hv: string; platform: string; flavor?: string; format: string; formats: string[] }[];
    expect(new Set(vs2.map((v) => v.hv))).toEqual(new Set(["kvm"]));
    const rt = vs2.find((v) => v.arch === "amd64" && v.platform === "rt" && !v.flavor)!;
    expect(rt.formats).toEqual(["ext4"]);
    expect(rt).not.toHaveProperty("defaultFormat"); // a build of rt must say ROOTFS_FORMAT=ext4
    expect(vs2.find((v) => v.arch === "amd64" && v.platform === "generic" && !v.flavor)).toMatchObject({ defaultFormat: "squashfs", formats: ["squashfs", "ext4", "erofs"] });
    const table = await kiln(["-C", dir2, "variants"]);
    expect(table.stdout).toMatch(/amd64\s+kvm\s+rt\s+-\s+ext4 \(set ROOTFS_FORMAT\)/);
    expect(table.stdout).toMatch(/amd64\s+kvm\s+generic\s+-\s+squashfs \(default\), ext4, erofs/);
    // what the listing shows is what a build accepts, and nothing else
    const store = await tempDir();
    const rtDefault = await kiln(["-C", dir2, "build", "rootfs.tar", "PLATFORM=rt"], { store });
    expect(rtDefault.code).toBe(2);
    expect(rtDefault.stderr).toMatch(/PLATFORM=rt needs ROOTFS_FORMAT=ext4/);
    const rtTar = await kiln(["-C", dir2, "build", "rootfs.tar", "PLATFORM=rt", "ROOTFS_FORMAT=ext4"], { store });
    expect(rtTar.code, rtTar.stderr).toBe(0);
    const mini = await kiln(["-C", dir2, "build", "rootfs.tar", "HV=mini"], { store });
    expect(mini.code).toBe(2);
    expect(mini.stderr).toMatch(/HV=mini is not one of: kvm/);
  });

  it("puts a changed package's new image into the tar from the remembered spec, and reports spec errors at the composed yml's line", async () => {
    const { dir, store } = await project();
    expect((await kiln(["-C", dir, "--json", "build", "rootfs"], { store })).code).toBe(0);
    const getty = join(dir, "pkg/getty/build.yml");
    await writeFile(getty, (await readFile(getty, "utf8")).replace('contents: "#!/bin/sh\\n"', 'contents: "#!/bin/sh\\necho v2\\n"'));
    const r = await kiln(["-C", dir, "--json", "build", "rootfs"], { store });
    expect(r.code, r.stderr).toBe(0);
    const yml = await readFile(join(dir, "images/out/rootfs-kvm-generic.yml"), "utf8");
    const ref = /image: (kiln\/getty:[0-9a-f]+)/.exec(yml)![1]!;
    const tar = await readTar(join(dir, "out/amd64/kvm-generic/rootfs.tar"));
    expect(tar.find((e) => e.name === "containers/services/getty/lower/sbin/getty")?.body).toBe("#!/bin/sh\necho v2\n");
    expect(tar.find((e) => e.name === "etc/linuxkit.yml")?.body).toContain(ref); // metadata: yaml is the substituted text
    const tpl = join(dir, "images/rootfs.yml.in");
    await writeFile(tpl, (await readFile(tpl, "utf8")).replace("    binds.add:", "    bind.add:"));
    const bad = await kiln(["-C", dir, "build", "rootfs"], { store });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown key 'bind\.add'[\s\S]*?--> images\/out\/rootfs-kvm-generic\.yml:13:5[\s\S]*?did you mean 'binds\.add'/);
  });

  it("reuses an unchanged rootfs.tar, and is byte-identical across folders, time zones and umasks", async () => {
    const sums: string[] = [];
    for (const [umask, tz] of [["022", "UTC"], ["077", "America/Los_Angeles"]]) {
      const { dir, store } = await project();
      const r = await execa("sh", ["-c", `umask ${umask}; exec node ${BIN} -C ${dir} --json build rootfs`], { reject: false, env: { KILN_STORE: store, TZ: tz } });
      expect(r.exitCode, r.stderr).toBe(0);
      const { createHash } = await import("node:crypto");
      sums.push(createHash("sha256").update(await readFile(join(dir, "out/amd64/kvm-generic/rootfs.tar"))).digest("hex"));
      const again = await kiln(["-C", dir, "--json", "build", "rootfs"], { store });
      expect(again.stdout).toMatch(/"target":"rootfs\/amd64\/kvm-generic","key":"[0-9a-f]+","cached":true/);
    }
    expect(sums[1]).toBe(sums[0]);
  });
});

describe("kiln validate on an EVE-shaped project", () => {
  it("checks the templates and parses every modifier, reporting all problems together", async () => {
    const ok = await writeProject(EVELIKE);
    const good = await kiln(["-C", ok, "validate"]);
    expect(good.code, good.stderr).toBe(0);
    // 2 archs × 2 HVs × 3 platforms × 2 flavors, less jetson on amd64
    expect(good.stdout).toContain("images/rootfs.yml.in, images/installer.yml.in, 3 modifiers, 20 variants composed OK");
    const bad = await writeProject({
      ...EVELIKE,
      "images/modifiers/hv/kvm.yq": '.services += [{"name": "x"\n',
      "images/modifiers/hv/acrn.yq": ".kernel.cmdline |= sort_by(.a)\n",
      "images/installer.yml.in": "kernel:\n  image: KERNEL_TAG\n  cmdlnie: x\n",
    });
    const r = await kiln(["-C", bad, "validate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error\[E_UNKNOWN_KEY\]: unknown key 'cmdlnie' in kernel\n\s+--> images\/installer\.yml\.in:3:3/);
    expect(r.stderr).toMatch(/error\[E_YQ_SYNTAX\][^\n]*\n\s+--> images\/modifiers\/hv\/kvm\.yq:2:1/);
    expect(r.stderr).toMatch(/error\[E_YQ_UNSUPPORTED\]: [^\n]*sort_by[^\n]*\n\s+--> images\/modifiers\/hv\/acrn\.yq:1:20/);
    expect(r.stderr).toContain("3 problems");
    // what a modifier adds, and the placeholders, are checked on every variant composed; each problem told once
    const composed = await writeProject({
      ...EVELIKE,
      "images/modifiers/hv/xen.yq": '.services[0].capabilites = ["all"]\n',
      "images/modifiers/platform/rt/rt.yq": '.init += ["NOPE_TAG"]\n',
    });
    const v = await kiln(["-C", composed, "validate"]);
    expect(v.code).toBe(2);
    expect(v.stderr).toMatch(/error\[E_UNKNOWN_KEY\]: unknown key 'capabilites' in services\[0\]\n\s+--> images\/out\/rootfs-xen-generic\.yml\.in:\d+:5\n\s+hint: did you mean 'capabilities'\?; also in rootfs-xen-generic-evaluation, rootfs-xen-jetson/);
    expect(v.stderr).toMatch(/error\[E_UNKNOWN_PLACEHOLDER\]: images\/out\/rootfs-kvm-rt\.yml\.in refers to packages that do not exist: NOPE_TAG/);
    // once per place (rootfs and installer, whose lines differ on rt), not once per variant
    expect(v.stderr.match(/unknown key 'capabilites'/g)).toHaveLength(4);
    expect(v.stderr).toContain("the file as `kiln build` writes it (validate only composes it)");
    // validate writes nothing: images/out/ stays what the last build made
    await expect(stat(join(composed, "images/out"))).rejects.toThrow();
  });
});
