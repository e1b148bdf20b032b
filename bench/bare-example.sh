#!/usr/bin/env bash
# The "bare tools" baseline of the example OS (issue #10): what
# `kiln build live` does for examples/kiln-os (amd64, hv=kvm, platform=generic,
# format=squashfs), done by hand with the same Debian tools and nothing else.
#
#   bench/bare-example.sh        OUT_DIR DEB_DIR PROJECT_DIR [JOBS]   # cold: everything
#   bench/bare-example.sh --edit OUT_DIR DEB_DIR PROJECT_DIR [JOBS]   # after editing pkg/hello-service
#
#   OUT_DIR      gets rootfs.tar, rootfs.img, config.img, efi.img, live.raw and
#                live.qcow2; scratch (the unpacked root tree the edit mode reuses)
#                in OUT_DIR/.work
#   DEB_DIR      the already-downloaded .debs of PROJECT_DIR/kiln.lock: kiln's
#                download cache (files named by their sha256: $KILN_DOWNLOADS, or
#                STORE/kiln/downloads, STORE = --store, $KILN_STORE or
#                ~/.cache/kiln), or a folder of .debs under their pool file names.
#                Nothing is ever downloaded: a missing .deb is an error.
#   PROJECT_DIR  examples/kiln-os (its kiln.lock, pkg/*, images/rootfs.yml.in, conf/)
#   JOBS         mksquashfs -processors (kiln uses its -j; default: nproc)
#
# Environment: ROOTFS_VERSION (default "bare") goes into /etc/kiln-release.
# SQUASHFS_COMP is mksquashfs -comp, SQUASHFS_LEVEL its -Xcompression-level;
# by default kiln's release profile: PROJECT_DIR/kiln.yml's images.compression
# and images.compressionLevel (gzip and mksquashfs's level when unset). lz4
# (no level) is what `kiln build --profile dev` uses.
# Per-step timings go to stderr ("bare: STEP 1.234 s"), the total last.
#
# Cold mode, step by step (kiln's stage in brackets):
#   debs      [debian packages] the pinned .debs of kiln.lock, with the recipes'
#             `paths` filters: busybox-static and crun (+ its libraries) whole,
#             straight into the root tree (both are `init:` images); grub's
#             /usr/lib/grub/** and the kernel's vmlinuz + 22 boot modules
#             (streamed through tar with the same globs) into sysroots; the
#             kernel's in the background (it takes ~2.5 s), so the steps up to
#             `hello` overlap it
#   grub, init, hello   (below)
#   linux-deb what is left of the wait for the kernel's unpack
#   kernel    [pkg/kernel] the recipe's own script: depmod, modprobe
#             --show-depends, busybox initramfs (cpio | gzip -9), kernel.tar
#   grub      [pkg/grub] the recipe's own script: grub-mkimage with an embedded
#             config and memdisk → EFI/BOOT/BOOTX64.EFI
#   init      [pkg/init] the files recipe, by hand (install, mkdir, printf)
#   hello     [pkg/hello-onboot, pkg/hello-service] the recipes' own scripts,
#             straight into containers/onboot/000-hello/rootfs and
#             containers/services/hello/rootfs
#   compose   [rootfs.tar] kernel.tar unpacked at /, boot/kernel, boot/cmdline,
#             the containers' config.json (jq, the same OCI spec kiln writes) and
#             mount points, etc/kiln-release, etc/linuxkit.yml; tar of the tree
#             (sorted, owner 0, fixed mtime)
#   squashfs  [rootfs.img] mksquashfs - -tar with kiln's options (the release
#             compression of kiln.yml, or $SQUASHFS_COMP)
#   config    [config.img] kiln's share/conf, then PROJECT/conf over it;
#             mkfs.vfat -C 1 MiB + mcopy
#   esp       [efi.img] EFI/BOOT/{BOOTX64.EFI,kernel,initrd.img} + the grub.cfg
#             kiln writes (linux/initrd/boot); FAT32 of 36 MiB, mkfs.vfat + mcopy
#   gpt       [live.raw] EVE's live layout (efi 36M, IMGA, IMGB, CONFIG, P3 8M)
#             by sfdisk, images put in with dd conv=notrunc,sparse
#   qcow2     [live.qcow2] qemu-img convert -O qcow2
#
# Edit mode (the floor of kiln's edit loop after changing pkg/hello-service's
# script): reuses OUT_DIR/.work (the root tree), efi.img and config.img of a
# cold run, and redoes only: the hello-service script into its container
# rootfs, tar, mksquashfs, the GPT and qemu-img.
#
# Left out on purpose (kiln-specific bookkeeping, not needed to boot): the dpkg
# database (var/lib/dpkg) and var/lib/kiln/debian-packages.json kiln writes for
# its debian packages; hashing, records, OCI layers/blobs, temp-and-rename.
set -euo pipefail

edit=0
if [ "${1:-}" = --edit ]; then edit=1; shift; fi
if [ $# -lt 3 ]; then
  echo "usage: $0 [--edit] OUT_DIR DEB_DIR PROJECT_DIR [JOBS]" >&2
  exit 2
fi
if [ ! -f "$3/kiln.lock" ] || [ ! -d "$3/pkg/kernel" ]; then
  echo "bare-example: $3 is not the example project (no kiln.lock or pkg/kernel)" >&2
  exit 2
fi
out=$(realpath -m "$1") debs=$(realpath -m "$2") proj=$(realpath "$3") jobs=${4:-$(nproc)}
here=$(dirname "$(realpath "$0")")
# shellcheck source=bench/eve-live.sh
source "$here/eve-live.sh"
work=$out/.work
root=$work/root # the root file system, unpacked
arch=amd64 hv=kvm
epoch=$(sed -n 's/^sourceDateEpoch: *\([0-9]*\).*/\1/p' "$proj/kiln.yml")
epoch=${epoch:-0}
# mksquashfs -comp and level: $SQUASHFS_COMP (its level only from $SQUASHFS_LEVEL), else kiln's
# release profile, kiln.yml images.compression / images.compressionLevel (direct keys of images:)
yml_images() { awk -v k="$1" '/^images:/ { on = 1; next } on && /^[^ #]/ { on = 0 } on && $1 == k ":" { print $2 }' "$proj/kiln.yml"; }
if [ -n "${SQUASHFS_COMP:-}" ]; then
  comp=$SQUASHFS_COMP level=${SQUASHFS_LEVEL:-}
else
  comp=$(yml_images compression) level=${SQUASHFS_LEVEL:-$(yml_images compressionLevel)}
  comp=${comp:-gzip}
fi
MiB=1048576
export LC_ALL=C TZ=UTC PATH=$PATH:/usr/sbin:/sbin
for t in jq dpkg-deb tar awk depmod modprobe cpio gzip grub-mkimage mksquashfs mkfs.vfat mcopy sfdisk qemu-img; do
  command -v "$t" >/dev/null || { echo "bare-example: $t is not installed (see kiln doctor)" >&2; exit 3; }
done

# ---------------------------------------------------------------- helpers

# step NAME: time from the previous mark to now, printed as "bare: NAME 1.234 s"
t_start=$EPOCHREALTIME t_mark=$EPOCHREALTIME
ms() { local s=${1/./} e=${2/./}; echo $(((10#$e - 10#$s) / 1000)); }
step() {
  local now=$EPOCHREALTIME d
  d=$(ms "$t_mark" "$now")
  printf 'bare: %-9s %d.%03d s\n' "$1" $((d / 1000)) $((d % 1000)) >&2
  t_mark=$now
}

# recipe_script PKG: the `script: |` block of PROJECT/pkg/PKG/build.yml (the
# last key of every script recipe of the example), unindented
recipe_script() {
  awk '/^script: *\|/ { on = 1; next } on && /^[^ ]/ { on = 0 } on { sub(/^  /, ""); print }' "$proj/pkg/$1/build.yml"
}

# run_recipe PKG SYSROOT DESTDIR [SOURCES...]: the recipe's script as kiln runs
# it (bash, set -euo pipefail, umask 022, in a scratch folder with its sources)
run_recipe() {
  local pkg=$1 sysroot=$2 dest=$3 src=$work/src/$1
  shift 3
  rm -rf "$src"
  mkdir -p "$src" "$dest"
  for f in "$@"; do cp "$proj/pkg/$pkg/$f" "$src/"; done
  SYSROOT=$sysroot DESTDIR=$dest SRCDIR=$src KILN_ARCH=$arch SOURCE_DATE_EPOCH=$epoch \
    bash -c "set -euo pipefail; umask 022; cd \"\$SRCDIR\"; $(recipe_script "$pkg")"
}

# hello_service: pkg/hello-service into its container's rootfs (cold and edit)
hello_service() {
  local c=$root/containers/services/hello/rootfs
  rm -rf "$c"
  run_recipe hello-service "$root" "$c" hello.sh
  mkdir -p "$c"/{dev/mqueue,dev/pts,dev/shm,proc,sys/fs/cgroup}
}

# make_tar: rootfs.tar of the tree, as kiln's (no ./ prefix, sorted, owner 0, fixed mtime)
make_tar() {
  (cd "$root" && tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    --format=gnu -cf "$out/rootfs.tar" -- *)
  step tar
}

# make_squashfs: rootfs.img from the tar stream, kiln's options (src/fs/rootfs-img.ts)
make_squashfs() {
  mksquashfs - "$out/rootfs.img" -tar -noappend -quiet -no-progress -comp "$comp" ${level:+-Xcompression-level "$level"} \
    -mkfs-time "$epoch" -all-time "$epoch" -root-mode 0755 -root-uid 0 -root-gid 0 \
    -processors "$jobs" <"$out/rootfs.tar"
  step squashfs
}

# make_disk: live.raw (EVE's live layout, src/disk/layout.ts EVE_LIVE) and live.qcow2
make_disk() {
  rm -f "$out/live.qcow2"
  eve_live_raw "$out" "$out/efi.img"
  step gpt
  qemu-img convert -q -f raw -O qcow2 "$out/live.raw" "$out/live.qcow2"
  step qcow2
}

total() {
  local d
  d=$(ms "$t_start" "$EPOCHREALTIME")
  printf 'bare: %-9s %d.%03d s\n' total $((d / 1000)) $((d % 1000)) >&2
}

# ---------------------------------------------------------------- edit mode

if [ $edit = 1 ]; then
  for f in "$root/sbin/init" "$out/efi.img" "$out/config.img"; do
    [ -e "$f" ] || { echo "bare-example: --edit needs a cold run in $out first ($f is missing)" >&2; exit 1; }
  done
  hello_service
  step hello
  make_tar
  make_squashfs
  make_disk
  total
  exit 0
fi

# ---------------------------------------------------------------- cold: the Debian packages

# DEB[RECIPE/NAME]: the path of that .deb of kiln.lock (amd64) in DEB_DIR, for
# the four debian recipes the live image needs (gdisk-deb is the installer's);
# all checked before anything starts: nothing is downloaded
declare -A DEB
missing=()
while read -r recipe name sha file; do
  case $recipe in busybox-deb | crun-deb | grub-deb | linux-deb) ;; *) continue ;; esac
  if [ -f "$debs/$sha" ]; then DEB[$recipe/$name]=$debs/$sha
  elif [ -f "$debs/${file##*/}" ]; then DEB[$recipe/$name]=$debs/${file##*/}
  else missing+=("${file##*/} (sha256 $sha)"); fi
done < <(jq -r --arg a "$arch" '.recipes | to_entries[] | .key as $r | (.value.archs[$a] // [])[] | "\($r) \(.name) \(.sha256) \(.filename)"' "$proj/kiln.lock")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'bare-example: not in %s (build the project once with kiln to fill its download cache):\n' "$debs" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi
deb() { echo "${DEB[$1/$2]}"; }
debs_of() { # the .debs of a recipe, in kiln.lock's (install) order
  jq -r --arg r "$1" --arg a "$arch" '.recipes[$r].archs[$a][].name' "$proj/kiln.lock" | while read -r n; do deb "$1" "$n"; done
}

rm -rf "$work" "$out"/{rootfs.tar,rootfs.img,config.img,efi.img,live.raw,live.qcow2}
mkdir -p "$out" "$root" "$work/sys-linux" "$work/sys-grub"

# pkg/linux-deb: only vmlinuz, modules.* and the boot modules (the recipe's
# `paths`), streamed out of the 70 MB data.tar.xz; the slowest step, so it
# runs in the background while the small packages are unpacked.
# (linux-image-amd64, the metapackage, holds nothing those paths keep.)
linux_paths=()
while read -r p; do linux_paths+=(".$p"); done < <(sed -n '/^paths:/,/^[^ ]/s/^  - //p' "$proj/pkg/linux-deb/build.yml")
linux_deb=$(deb linux-deb "$(jq -r --arg a "$arch" '.recipes["linux-deb"].archs[$a][] | select(.name | startswith("linux-image-6")) | .name' "$proj/kiln.lock")")
(dpkg-deb --fsys-tarfile "$linux_deb" | tar -x -C "$work/sys-linux" --wildcards "${linux_paths[@]}") &
linux_pid=$!
trap 'kill "$linux_pid" 2>/dev/null || true' EXIT # on an early failure

# pkg/busybox-deb and pkg/crun-deb (no `paths`: whole packages), both in the
# image's init, so straight into the root tree; the busybox there is also the
# $SYSROOT busybox of pkg/kernel and the hello containers
for d in $(debs_of busybox-deb) $(debs_of crun-deb); do dpkg-deb -x "$d" "$root"; done
# pkg/grub-deb: /usr/lib/grub/** (its `paths`)
dpkg-deb --fsys-tarfile "$(debs_of grub-deb)" | tar -x -C "$work/sys-grub" --wildcards './usr/lib/grub/*'
step debs

# ---------------------------------------------------------------- cold: our packages

# pkg/grub: grub-mkimage → EFI/BOOT/BOOTX64.EFI, straight into the root tree
run_recipe grub "$work/sys-grub" "$root"
step grub

# pkg/init (a files recipe)
install -D -m 0755 "$proj/pkg/init/init" "$root/sbin/init"
mkdir -p "$root"/{proc,sys,dev,run,var/config} && install -d -m 1777 "$root/tmp"
printf 'kiln-os\n' >"$root/etc/hostname" && chmod 0644 "$root/etc/hostname"
step init

# pkg/hello-onboot, pkg/hello-service: the containers' rootfs, with the mount
# points of their config.json (and the onboot one's bind of /var/config)
c=$root/containers/onboot/000-hello/rootfs
run_recipe hello-onboot "$root" "$c" hello.sh
mkdir -p "$c"/{dev/mqueue,dev/pts,dev/shm,proc,sys/fs/cgroup,var/config}
hello_service
step hello

# pkg/kernel: needs linux-deb (background job above) and busybox
wait "$linux_pid"
step linux-deb
mkdir -p "$work/sys-linux/bin" && cp "$root/bin/busybox" "$work/sys-linux/bin/"
run_recipe kernel "$work/sys-linux" "$work/kernel" initramfs-init
step kernel

# ---------------------------------------------------------------- cold: compose → rootfs.tar

# kernel: /kernel → boot/kernel, boot/cmdline; /kernel.tar unpacked at /
cmdline=$(sed -n 's/^ *cmdline: *"\(.*\)"/\1/p' "$proj/images/rootfs.yml.in")
mkdir -p "$root/boot"
cp "$work/kernel/kernel" "$root/boot/kernel"
printf '%s' "$cmdline" >"$root/boot/cmdline"
tar -xf "$work/kernel/kernel.tar" -C "$root"

# the containers' config.json: the OCI runtime spec kiln writes (src/compose/oci-runtime.ts)
oci_config() { # NAME CGROUP BINDS_JSON
  jq -n --arg name "$1" --arg cg "$2" --argjson binds "$3" '
    ["CAP_AUDIT_WRITE","CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_MKNOD",
     "CAP_NET_BIND_SERVICE","CAP_NET_RAW","CAP_SETFCAP","CAP_SETGID","CAP_SETPCAP","CAP_SETUID","CAP_SYS_CHROOT"] as $caps |
    {ociVersion: "1.0.2",
     process: {terminal: false, user: {uid: 0, gid: 0}, args: ["/bin/busybox", "sh", "/hello.sh"],
               env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], cwd: "/",
               capabilities: {bounding: $caps, effective: $caps, permitted: $caps}, noNewPrivileges: false},
     root: {path: "rootfs", readonly: false},
     hostname: $name,
     mounts: ([
       {destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid","strictatime","mode=755","size=65536k"]},
       {destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid","noexec","nodev"]},
       {destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]},
       {destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid","noexec","nodev","mode=1777"]},
       {destination: "/proc", type: "proc", source: "proc", options: ["nosuid","nodev","noexec","relatime"]},
       {destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid","noexec","nodev","ro"]},
       {destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid","noexec","nodev","relatime","ro"]}
     ] + [$binds[] | split(":") | {destination: .[1], type: "bind", source: .[0], options: ["rbind","rw","rprivate"]}]),
     linux: {namespaces: [{type: "pid"},{type: "network"},{type: "ipc"},{type: "uts"},{type: "mount"}],
             cgroupsPath: $cg,
             maskedPaths: ["/proc/kcore","/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/sys/firmware","/proc/scsi"],
             readonlyPaths: ["/proc/asound","/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]}}'
}
oci_config hello onboot/hello '["/var/config:/var/config"]' >"$root/containers/onboot/000-hello/config.json"
oci_config hello services/hello '[]' >"$root/containers/services/hello/config.json"

# the image spec's files
version="${ROOTFS_VERSION:-bare}-$hv-$arch"
printf 'kiln-os %s on %s\n' "$version" "$hv" >"$root/etc/kiln-release"
sed -e "s/EVE_VERSION/$version/g; s/EVE_HV/$hv/g; s/\([A-Z_]*\)_TAG/bare\/\1/g" "$proj/images/rootfs.yml.in" >"$root/etc/linuxkit.yml"
chmod 0644 "$root/etc/kiln-release" && chmod 0600 "$root/etc/linuxkit.yml"
step compose
make_tar

# ---------------------------------------------------------------- cold: the images

make_squashfs

# config.img: kiln's defaults (share/conf), then the project's conf/ over them
mkdir -p "$work/conf"
for d in "$here/../share/conf" "$proj/conf"; do
  if [ -d "$d" ]; then cp -rL "$d/." "$work/conf/"; fi
done
find "$work/conf" -exec touch -h -d "@$epoch" {} +
export MTOOLS_SKIP_CHECK=1
SOURCE_DATE_EPOCH=$epoch mkfs.vfat --invariant -i 0c0f1600 -n EVE -C "$out/config.img" 1024 >/dev/null
SOURCE_DATE_EPOCH=$epoch mcopy -s -m -p -Q -i "$out/config.img" "$work/conf"/* ::/
step config

# efi.img: the EFI/BOOT files of the rootfs + the grub.cfg kiln writes for a
# kernel in EFI/BOOT (src/formats/targets.ts espGrubCfg); FAT32, 36 MiB
mkdir -p "$work/esp/EFI/BOOT"
cp "$root"/EFI/BOOT/* "$work/esp/EFI/BOOT/"
printf '%s\n' "# written by kiln: the kernel, initramfs and cmdline of the image spec" "set timeout=0" \
  "linux /EFI/BOOT/kernel $cmdline" "initrd /EFI/BOOT/initrd.img" boot >"$work/esp/EFI/BOOT/grub.cfg"
find "$work/esp" -exec touch -h -d "@$epoch" {} +
SOURCE_DATE_EPOCH=$epoch mkfs.vfat --invariant -F 32 -i 0e5f0000 -n EFI -C "$out/efi.img" 36864 >/dev/null
SOURCE_DATE_EPOCH=$epoch mcopy -s -m -p -Q -i "$out/efi.img" "$work/esp/EFI" ::/
step esp

make_disk
total
