#!/bin/sh
# PID 1 of the test system (initramfs of every slot): loads the modules, mounts the booted
# slot (root= from U-Boot) read-only at /slot and the data partition at /data, runs the real
# agent once (`otter update`), prints `otter status --json` between markers, then reboots when
# the agent asked for it and powers off otherwise. The slot's /etc/e2e-behaviour can say
# "crash": the release resets before its agent runs (a release that never confirms).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
echo 3 > /proc/sys/kernel/printk
for m in $(cat /etc/e2e-modules); do
	insmod "/lib/modules/$m" || echo "E2E-ERROR insmod $m"
done

root=
slot=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
		root=*) root=${arg#root=} ;;
		otter.slot=*) slot=${arg#otter.slot=} ;;
	esac
done
n=0
while [ ! -b "$root" ] || [ ! -b /dev/vda4 ]; do
	n=$((n + 1))
	if [ $n -gt 100 ]; then echo "E2E-ERROR no $root"; poweroff -f; fi
	sleep 0.1
done
mkdir -p /slot /data
mount -t ext4 -o ro "$root" /slot || { echo "E2E-ERROR mount $root"; dmesg | tail -n 5; }
mount -t ext4 /dev/vda4 /data || echo "E2E-ERROR mount /dev/vda4"

# U-Boot's environment: the second flash bank (one concatenated MTD device, or the second).
mtd=$(grep -c '^mtd' /proc/mtd)
if [ "$mtd" = 1 ]; then
	echo "/dev/mtd0 0x4000000 0x40000 0x40000" > /etc/fw_env.config
else
	echo "/dev/mtd1 0x0 0x40000 0x40000" > /etc/fw_env.config
fi
cat /proc/mtd

version=$(sed -n 's/^VERSION_ID="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /slot/etc/os-release 2>/dev/null)
behaviour=$(cat /slot/etc/e2e-behaviour 2>/dev/null)
echo "$version" > /run/e2e-version  # the health check fails if /data/e2e/fail-health-<version>
echo "E2E-BOOT slot=$slot version=$version root=$root"
if [ "$behaviour" = crash ]; then
	echo "E2E-CRASH"
	umount /data
	reboot -f
fi

otter update > /tmp/update.log 2>&1
echo "E2E-UPDATE rc=$?"
sed 's/^/E2E-LOG /' /tmp/update.log
otter status --json > /tmp/status.json 2> /tmp/status.err
rc=$?
sed 's/^/E2E-STATUS-STDERR /' /tmp/status.err
echo "E2E-STATUS-BEGIN"
cat /tmp/status.json
echo "E2E-STATUS-END rc=$rc"
sync
umount /data
umount /slot
if [ -e /run/e2e-reboot ]; then
	echo "E2E-REBOOT"
	reboot -f
fi
echo "E2E-POWEROFF"
poweroff -f
