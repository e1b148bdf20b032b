#!/bin/sh
# kiln-os installer: write the live system carried in /bits (efi.img, rootfs.img, config.img) onto
# the target disk with EVE's live layout, then power the machine off.
#
# The target is `eve_install_disk=NAME` from the kernel cmdline (as EVE's installer takes it), else
# the first whole disk that is not the boot disk (the one holding /; a CD-ROM, loop and RAM disks
# are never targets): the second disk when booted from installer.raw, the first from the ISO.
set -e
say() { echo "kiln-installer: $*"; }
fail() { echo "kiln-installer: FAILED: $*"; echo KILN-INSTALL-FAILED; sync; poweroff -f; exit 1; }

for f in efi.img rootfs.img config.img; do [ -f "/bits/$f" ] || fail "/bits/$f is missing"; done

# The boot disk holds the system's root file system (pid: host, so /proc/1 is the system's init);
# it is never the target. (Another disk may have a CONFIG partition the init mounted: a disk
# installed before, which is installed again.)
boot=$(awk '$2 == "/" && $1 ~ /^\/dev\// { print $1 }' /proc/1/mounts | tail -n 1)
bootdisk=""
if [ -n "$boot" ]; then
  bootdisk=$(basename "$(readlink -f "$boot")")
  if [ -e "/sys/class/block/$bootdisk/partition" ]; then bootdisk=$(basename "$(readlink -f "/sys/class/block/$bootdisk/..")"); fi
fi
say "root file system on ${boot:-?} (boot disk ${bootdisk:-none})"

target=""
for w in $(cat /proc/cmdline); do
  case "$w" in eve_install_disk=*) target=${w#eve_install_disk=}; target=${target#/dev/} ;; esac
done
if [ -z "$target" ]; then
  for d in /sys/block/*; do
    n=$(basename "$d")
    case "$n" in loop*|ram*|zram*|sr*|fd*|dm-*|md*) continue ;; esac
    [ "$(cat "$d/removable" 2>/dev/null)" = 1 ] && continue
    [ "$(cat "$d/ro" 2>/dev/null)" = 1 ] && continue
    [ "$(cat "$d/size")" -gt 0 ] || continue
    [ "$n" = "$bootdisk" ] && continue
    target=$n
    break
  done
fi
[ -n "$target" ] || fail "no target disk (a disk other than the boot disk; or set eve_install_disk=)"
[ -b "/dev/$target" ] || fail "/dev/$target is not a block device"
[ "$target" != "$bootdisk" ] || fail "/dev/$target is the boot disk"
disk=/dev/$target

# Sizes in MiB: the ESP is the live efi.img (36 MiB); IMGA and IMGB fit rootfs.img, CONFIG config.img.
mib() { echo $(( ($(stat -c %s "$1") + 1048575) / 1048576 )); }
efi=$(mib /bits/efi.img)
root=$(mib /bits/rootfs.img)
conf=$(mib /bits/config.img)
need=$(( 1 + efi + 2 * root + conf + 8 + 1 ))
have=$(( $(cat "/sys/block/$target/size") / 2048 ))
[ "$have" -ge "$need" ] || fail "$disk has $have MiB, the live layout needs $need MiB"
say "installing onto $disk ($have MiB): efi $efi MiB, IMGA/IMGB $root MiB, CONFIG $conf MiB, P3 8 MiB"

# EVE's live layout. IMGA: gptprio priority 2 (bits 48-51 = 0b0010: bit 49) and successful (bit 56).
sgdisk --zap-all "$disk" >/dev/null 2>&1 || true
sgdisk -o \
  -n "1:2048:+${efi}M" -t 1:C12A7328-F81F-11D2-BA4B-00A0C93EC93B -c "1:EFI System" \
  -n "2:0:+${root}M" -t 2:5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6 -c 2:IMGA -A 2:set:49 -A 2:set:56 \
  -n "3:0:+${root}M" -t 3:5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6 -c 3:IMGB \
  -n "4:0:+${conf}M" -t 4:13307E62-CD9C-4920-8F9B-91B45828B798 -c 4:CONFIG \
  -n 5:0:+8M -t 5:5F24425A-2DFA-11E8-A270-7B663FACCC2C -c 5:P3 \
  "$disk" || fail "sgdisk could not partition $disk"

# Write each image at its partition's offset on the whole disk (no wait for partition device nodes).
put() {
  start=$(sgdisk -i "$1" "$disk" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
  [ -n "$start" ] && [ $((start % 2048)) -eq 0 ] || fail "partition $1 of $disk does not start on a MiB boundary"
  say "partition $1 <- $2"
  dd if="$2" of="$disk" bs=1M seek=$((start / 2048)) conv=notrunc,fsync 2>/dev/null || fail "writing $2 to partition $1"
}
put 1 /bits/efi.img
put 2 /bits/rootfs.img
put 3 /bits/rootfs.img
put 4 /bits/config.img
# P3 (persist) starts empty: clear any old file system signature.
p3=$(sgdisk -i 5 "$disk" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
dd if=/dev/zero of="$disk" bs=1M seek=$((p3 / 2048)) count=1 conv=notrunc 2>/dev/null || true
sync
sgdisk -v "$disk" | sed 's/^/kiln-installer: /'
say "done"
echo KILN-INSTALL-DONE
sync
poweroff -f
