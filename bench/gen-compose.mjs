#!/usr/bin/env node
// Generate the image-shaped kiln project of the `compose` and `disk` benchmarks.
//
//   node bench/gen-compose.mjs DIR
//
// A rootfs of ~400 MB (~393 MiB of layer bytes) in the shape of an EVE image:
//   kernel    script  /kernel (12 MiB) + /kernel.tar (300 modules of 4–200 KiB, ~29 MiB)   kernel:
//   base      script  busybox, passwd/group, /init, EFI/BOOT/BOOTX64.EFI        init:
//   libs      script  1500 small files (2–42 KiB, ~32 MiB) in 30 folders          init:
//   sysctl    files   one script                                                 onboot:
//   tools     script  1500 small files (~32 MiB)                                 onboot:
//   getty     files   a getty and a passwd                                       services:
//   pillar    script  4 large files: 100 + 70 + 50 + 30 MiB                      services:
//   apps      script  1500 small files (~32 MiB)                                 services:
// Contents come from /dev/urandom (incompressible; not reproducible, which the
// benchmarks do not need). The recipes themselves are deterministic, so the
// package keys stay the same across runs and a kept store stays valid.
// Only the files of the project are written (DIR/pkg, DIR/images, DIR/conf,
// DIR/kiln.yml); anything else in DIR is left alone.

import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const MiB = 1 << 20;

/** A script body writing COUNT files of 2–42 KiB (bash $RANDOM, seeded: 0–32767) in 30 folders under ROOT. */
function smallFiles(root, count, seed) {
  return [
    `RANDOM=${seed}`,
    `for i in $(seq 1 ${count}); do`,
    `  d="$DESTDIR${root}/d$(( i % 30 ))"`,
    `  [ -d "$d" ] || mkdir -p "$d"`,
    `  head -c $(( 2048 + RANDOM * 5 / 4 )) /dev/urandom > "$d/f$i.so"`,
    `done`,
    `ln -s d0/f30.so "$DESTDIR${root}/current.so"`,
  ];
}

function script(lines, image) {
  const img = image ? ["image:", ...image.map((l) => `  ${l}`)] : [];
  return ["kind: script", ...img, "script: |", ...lines.map((l) => `  ${l}`), ""].join("\n");
}

/** Every file of the project: path relative to DIR → contents. */
export function composeProjectFiles() {
  const f = {};
  f["kiln.yml"] = ["name: bench-compose", "archs: [amd64]", "sourceDateEpoch: 1700000000", ""].join("\n");
  f["images/rootfs.yml.in"] = [
    "kernel:",
    "  image: KERNEL_TAG",
    '  cmdline: "console=ttyS0 rootdelay=3"',
    "init:",
    "  - BASE_TAG",
    "  - LIBS_TAG",
    "onboot:",
    "  - name: sysctl",
    "    image: SYSCTL_TAG",
    "  - name: tools",
    "    image: TOOLS_TAG",
    "services:",
    "  - name: getty",
    "    image: GETTY_TAG",
    "  - name: pillar",
    "    image: PILLAR_TAG",
    "  - name: apps",
    "    image: APPS_TAG",
    "files:",
    "  - path: etc/issue",
    '    contents: "kiln bench\\n"',
    "  - path: etc/linuxkit.yml",
    "    metadata: yaml",
    "",
  ].join("\n");
  f["conf/server"] = "zedcloud.example.org\n";
  f["conf/onboard/key.pem"] = "not a real key\n";
  f["pkg/kernel/build.yml"] = script([
    `head -c ${12 * MiB} /dev/urandom > "$DESTDIR/kernel"`,
    "RANDOM=7",
    "for i in $(seq 1 300); do",
    '  d="m/lib/modules/6.6.0/kernel/drivers/d$(( i % 20 ))"',
    '  [ -d "$d" ] || mkdir -p "$d"',
    '  head -c $(( 4096 + RANDOM * 6 )) /dev/urandom > "$d/mod$i.ko"',
    "done",
    'tar -C m --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$DESTDIR/kernel.tar" lib',
  ]);
  f["pkg/base/build.yml"] = script([
    'mkdir -p "$DESTDIR/bin" "$DESTDIR/etc" "$DESTDIR/dev" "$DESTDIR/EFI/BOOT" "$DESTDIR/var/log"',
    `head -c ${1 * MiB} /dev/urandom > "$DESTDIR/bin/busybox"`,
    'chmod 0755 "$DESTDIR/bin/busybox"',
    'for t in sh ls cat mount; do ln -s busybox "$DESTDIR/bin/$t"; done',
    'printf "root:x:0:0:root:/root:/bin/sh\\ndaemon:x:1:1:daemon:/:/bin/false\\n" > "$DESTDIR/etc/passwd"',
    'printf "root:x:0:\\ndaemon:x:1:\\n" > "$DESTDIR/etc/group"',
    'printf "#!/bin/sh\\nexec /bin/sh\\n" > "$DESTDIR/init"',
    'chmod 0755 "$DESTDIR/init"',
    `head -c ${1 * MiB} /dev/urandom > "$DESTDIR/EFI/BOOT/BOOTX64.EFI"`,
  ]);
  f["pkg/libs/build.yml"] = script(smallFiles("/usr/lib/bench", 1500, 11));
  f["pkg/tools/build.yml"] = script(smallFiles("/usr/libexec/tools", 1500, 12), ['cmd: ["/usr/libexec/tools/d0/f30.so"]']);
  f["pkg/apps/build.yml"] = script(smallFiles("/opt/apps", 1500, 13), ['cmd: ["/opt/apps/d0/f30.so"]']);
  f["pkg/pillar/build.yml"] = script(
    [
      'mkdir -p "$DESTDIR/opt/pillar/bin" "$DESTDIR/opt/pillar/share"',
      `head -c ${100 * MiB} /dev/urandom > "$DESTDIR/opt/pillar/bin/zedbox"`,
      `head -c ${70 * MiB} /dev/urandom > "$DESTDIR/opt/pillar/share/firmware.bin"`,
      `head -c ${50 * MiB} /dev/urandom > "$DESTDIR/opt/pillar/share/models.bin"`,
      `head -c ${30 * MiB} /dev/urandom > "$DESTDIR/opt/pillar/bin/helper"`,
      'chmod 0755 "$DESTDIR/opt/pillar/bin/zedbox" "$DESTDIR/opt/pillar/bin/helper"',
    ],
    ['cmd: ["/opt/pillar/bin/zedbox"]'],
  );
  f["pkg/sysctl/build.yml"] = [
    "kind: files",
    "image:",
    '  cmd: ["/sysctl.sh"]',
    "  linuxkit:",
    "    net: host",
    "    pid: host",
    "    capabilities: [CAP_SYS_ADMIN]",
    "files:",
    "  - path: /sysctl.sh",
    '    contents: "#!/bin/sh\\nsysctl -p\\n"',
    '    mode: "0755"',
    "",
  ].join("\n");
  f["pkg/getty/build.yml"] = [
    "kind: files",
    "image:",
    '  entrypoint: ["/sbin/getty"]',
    '  cmd: ["ttyS0"]',
    "files:",
    "  - path: /sbin/getty",
    '    contents: "#!/bin/sh\\n"',
    '    mode: "0755"',
    "  - path: /etc/passwd",
    '    contents: "root:x:0:0::/:/bin/sh\\n"',
    "",
  ].join("\n");
  return f;
}

/** Write the project into DIR: pkg/, images/ and conf/ are replaced (kiln keys on file contents, so rewriting the same text keeps the packages cached). */
export function generateComposeProject(dir) {
  const files = composeProjectFiles();
  for (const sub of ["pkg", "images", "conf"]) {
    // drop files a former version of this generator wrote and this one does not
    rmSync(join(dir, sub), { recursive: true, force: true });
  }
  for (const [rel, text] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
  }
  return { packages: Object.keys(files).filter((k) => k.endsWith("/build.yml")).map((k) => k.split("/")[1]) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const dir = process.argv[2];
  if (!dir) {
    console.error("usage: node bench/gen-compose.mjs DIR");
    process.exit(2);
  }
  const d = generateComposeProject(resolve(dir));
  console.log(`wrote ${resolve(dir)}: ${d.packages.length} packages (${d.packages.join(", ")})`);
}
