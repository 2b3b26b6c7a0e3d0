# otter A/B slot selection for U-Boot; docs/ab-updates.md explains it line by line.
# Compile with: mkimage -A arm64 -T script -C none -d boot.cmd boot.scr
#
# Environment (shared with otter through libubootenv and fw_env.config):
#   BOOT_ORDER      bootnames, first = preferred, e.g. "B A"
#   BOOT_A_LEFT     boot attempts slot A has left (0..9)
#   BOOT_B_LEFT     boot attempts slot B has left (0..9)
# Everything else the script uses is a hush local (name=value, not setenv): never saved.
# otter_tries must equal tries= in /etc/otter/system.conf. Adapt the two otter_root and
# otter_part values and the load/boot line at the end to the board.

setenv otter_slot
setenv otter_root
setenv otter_part
setenv otter_tries
otter_tries=3
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT ${otter_tries}
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT ${otter_tries}

otter_slot=
for otter_s in ${BOOT_ORDER}; do
	if test -z "${otter_slot}"; then
		if test "${otter_s}" = "A" && test ${BOOT_A_LEFT} -gt 0; then
			setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
			otter_slot=A
			otter_root=/dev/mmcblk0p2
			otter_part=2
		elif test "${otter_s}" = "B" && test ${BOOT_B_LEFT} -gt 0; then
			setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
			otter_slot=B
			otter_root=/dev/mmcblk0p3
			otter_part=3
		fi
	fi
done

if test -z "${otter_slot}"; then
	echo "otter: no slot in BOOT_ORDER has tries left; granting them again"
	setenv BOOT_A_LEFT ${otter_tries}
	setenv BOOT_B_LEFT ${otter_tries}
	saveenv
	reset
fi

saveenv
echo "otter: booting slot ${otter_slot}"
setenv bootargs "${bootargs} root=${otter_root} rootwait otter.slot=${otter_slot}"
load mmc 0:${otter_part} ${kernel_addr_r} /boot/Image && booti ${kernel_addr_r} - ${fdt_addr}
echo "otter: slot ${otter_slot} did not boot; resetting (its try is spent)"
reset
