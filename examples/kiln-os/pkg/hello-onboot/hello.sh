#!/bin/busybox sh
echo KILN-ONBOOT-OK
for f in /var/config/*; do
  [ -f "$f" ] && [ "${f##*/}" != README.txt ] && echo "KILN-CONFIG ${f##*/}=$(/bin/busybox head -n 1 "$f")"
done
