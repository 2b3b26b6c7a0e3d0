#!/bin/sh
# /init of the slot's initramfs in the GRUB tier (tests/e2e/test_grub.py). Runs the real
# agent once per boot, prints its status between markers on the serial port, then reboots
# (the agent asked for it) or powers off. Lines for the host start with "E2E:".
/bin/busybox mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s
mount -t proc proc /proc
echo 1 >/proc/sys/kernel/printk  # kernel messages would mix with the lines for the host
mount -t sysfs sys /sys
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

cmdline=$(cat /proc/cmdline)
echo "E2E: init cmdline: $cmdline"
slot=
root=
for w in $cmdline; do
	case "$w" in
	otter.slot=*) slot=${w#otter.slot=} ;;
	root=*) root=${w#root=} ;;
	esac
done

for m in $(cat /etc/e2e-modules); do
	insmod "$m" || echo "E2E: insmod $m failed"
done

i=0
while [ ! -b /dev/sda4 ] || [ ! -b "$root" ]; do
	i=$((i + 1))
	if [ $i -gt 300 ]; then
		echo "E2E: FAIL no disk"
		poweroff -f
	fi
	sleep 0.1
done

mkdir -p /boot /data /slot
mount -t vfat /dev/sda1 /boot || echo "E2E: FAIL mount ESP"
mount -t ext4 /dev/sda4 /data || echo "E2E: FAIL mount data"
mount -t ext4 -o ro "$root" /slot || echo "E2E: FAIL mount slot $root"
version=$(sed -n 's/^VERSION_ID="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /slot/etc/os-release)
mode=$(cat /slot/etc/e2e-mode 2>/dev/null)
echo "E2E: booted slot=$slot root=$root version=$version mode=${mode:-normal}"

finish() {
	umount /slot
	umount /data
	umount /boot
	sync
	if [ "$1" = reboot ]; then
		echo "E2E: REBOOT"
		reboot -f
	else
		echo "E2E: POWEROFF"
		poweroff -f
	fi
	sleep 30
}

if [ "$mode" = broken ]; then
	# A release that dies before anything could confirm it.
	echo "E2E: broken release, rebooting without running the agent"
	finish reboot
fi

otter update
echo "E2E: otter update exit $?"
echo "E2E: STATUS-BEGIN"
otter status --json
echo "E2E: STATUS-END"
echo "E2E: GRUBENV-BEGIN"
grep -v '^#' /boot/grub/grubenv
echo "E2E: GRUBENV-END"
if [ -e /run/e2e-reboot ]; then
	finish reboot
fi
finish poweroff
