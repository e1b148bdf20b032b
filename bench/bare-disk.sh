#!/usr/bin/env bash
# The baseline of the `disk` benchmark (bench/run.mjs): what `kiln build live`
# does after composing rootfs.tar, done with the bare tools and nothing else.
#
#   bench/bare-disk.sh ROOTFS_TAR OUT_DIR JOBS EPOCH [CONF_DIR...]
#
# Writes OUT_DIR/rootfs.img, config.img, live.raw and live.qcow2 (scratch in
# OUT_DIR/.work), with the same tools and options as kiln:
#   rootfs.img  mksquashfs -tar from stdin, gzip, fixed times, -processors JOBS
#   config.img  the CONF_DIRs overlaid in order, mkfs.vfat -C 1024 KiB + mcopy
#   ESP         EFI/BOOT/* of the rootfs.tar + a grub.cfg, FAT32 of 36 MiB
#   live.raw    GPT by sfdisk: efi 36M, imga and imgb sized to rootfs.img,
#               conf 1M, persist 8M (1 MiB aligned, as kiln places them);
#               images copied in with dd conv=notrunc,sparse
#   live.qcow2  qemu-img convert -O qcow2
# No hashing, no records, no temp-name-and-rename: the bare minimum of work.
set -euo pipefail

if [ $# -lt 4 ]; then
  echo "usage: $0 ROOTFS_TAR OUT_DIR JOBS EPOCH [CONF_DIR...]" >&2
  exit 2
fi
tar=$1 out=$2 jobs=$3 epoch=$4
shift 4
work=$out/.work
MiB=1048576

rm -rf "$work" "$out/rootfs.img" "$out/config.img" "$out/live.raw" "$out/live.qcow2"
mkdir -p "$work/conf" "$work/esp"

# rootfs.img: squashfs straight from the tar stream
mksquashfs - "$out/rootfs.img" -tar -noappend -quiet -no-progress -comp gzip \
  -mkfs-time "$epoch" -all-time "$epoch" -root-mode 0755 -root-uid 0 -root-gid 0 \
  -processors "$jobs" <"$tar"

# (after mksquashfs, which refuses SOURCE_DATE_EPOCH together with -mkfs-time)
export MTOOLS_SKIP_CHECK=1 SOURCE_DATE_EPOCH=$epoch TZ=UTC

# config.img: defaults, then the project's conf/ over them
for d in "$@"; do
  if [ -d "$d" ]; then cp -rL "$d/." "$work/conf/"; fi
done
find "$work/conf" -exec touch -h -d "@$epoch" {} +
mkfs.vfat --invariant -i 0c0f1600 -n EVE -C "$out/config.img" 1024 >/dev/null
mcopy -s -m -p -Q -i "$out/config.img" "$work/conf"/* ::/

# the ESP: the boot loader files the rootfs carries, plus a grub.cfg
tar -xf "$tar" -C "$work/esp" --wildcards 'EFI/BOOT/*'
printf 'set timeout=0\nset root=(hd0,gpt2)\nif [ -f /EFI/BOOT/grub.cfg ]; then configfile /EFI/BOOT/grub.cfg; fi\n' >"$work/esp/EFI/BOOT/grub.cfg"
find "$work/esp" -exec touch -h -d "@$epoch" {} +
mkfs.vfat --invariant -F 32 -i 0e5f0000 -n EFI -C "$work/esp.img" 36864 >/dev/null
mcopy -s -m -p -Q -i "$work/esp.img" "$work/esp/EFI" ::/

# live.raw: partition table, then each image at its partition's start
# shellcheck source=bench/eve-live.sh
source "$(dirname "$(realpath "$0")")/eve-live.sh"
eve_live_raw "$out" "$work/esp.img"

# live.qcow2
qemu-img convert -q -f raw -O qcow2 "$out/live.raw" "$out/live.qcow2"
rm -rf "$work"
