# shellcheck shell=bash
# Sourced by bench/bare-disk.sh and bench/bare-example.sh: EVE's live disk layout
# (src/disk/layout.ts EVE_LIVE) written with the bare tools.
#
#   eve_live_raw OUT ESP_IMG   OUT/live.raw from ESP_IMG, OUT/rootfs.img and OUT/config.img:
#                              GPT by sfdisk (efi 36M, imga and imgb sized to rootfs.img,
#                              conf sized to config.img, persist 8M, 1 MiB aligned, as kiln
#                              places them), images copied in with dd conv=notrunc,sparse
eve_live_raw() {
  local out=$1 esp_img=$2 MiB=1048576
  local esp=36 img conf persist=8 sec=$((MiB / 512)) s_esp s_imga s_imgb s_conf s_persist end
  img=$((($(stat -c %s "$out/rootfs.img") + MiB - 1) / MiB))
  conf=$((($(stat -c %s "$out/config.img") + MiB - 1) / MiB))
  s_esp=1
  s_imga=$((s_esp + esp))
  s_imgb=$((s_imga + img))
  s_conf=$((s_imgb + img))
  s_persist=$((s_conf + conf))
  end=$((s_persist + persist))
  rm -f "$out/live.raw"
  truncate -s $(((end + 1) * MiB)) "$out/live.raw"
  # IMGA: gptprio priority 2 (bit 49) and successful (bit 56); IMGB: priority 0
  sfdisk -q --no-reread --no-tell-kernel "$out/live.raw" >/dev/null <<EOT
label: gpt
unit: sectors
start=$((s_esp * sec)), size=$((esp * sec)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System"
start=$((s_imga * sec)), size=$((img * sec)), type=5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6, name="IMGA", attrs="GUID:49,56"
start=$((s_imgb * sec)), size=$((img * sec)), type=5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6, name="IMGB"
start=$((s_conf * sec)), size=$((conf * sec)), type=13307E62-CD9C-4920-8F9B-91B45828B798, name="CONFIG"
start=$((s_persist * sec)), size=$((persist * sec)), type=5F24425A-2DFA-11E8-A270-7B663FACCC2C, name="P3"
EOT
  local src seek
  for src in "$esp_img:$s_esp" "$out/rootfs.img:$s_imga" "$out/rootfs.img:$s_imgb" "$out/config.img:$s_conf"; do
    seek=${src##*:}
    dd if="${src%:*}" of="$out/live.raw" bs=1M seek="$seek" conv=notrunc,sparse status=none
  done
}
