#!/bin/busybox sh
echo KILN-SERVICE-OK
while true; do /bin/busybox sleep 3600; done
