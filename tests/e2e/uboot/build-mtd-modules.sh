#!/bin/bash
# Builds the CFI flash modules that Debian's arm64 kernel lacks (Linux needs them to reach
# U-Boot's environment in QEMU's second flash bank) out of tree from linux-source-6.1:
#   build-mtd-modules.sh KERNEL_CONFIG MODULE_SYMVERS KERNELRELEASE OUTDIR WORKDIR
# The configuration is the kernel's own plus CONFIG_MTD_CFI/CFI_INTELEXT/PHYSMAP(_OF) as
# modules; Module.symvers comes from the matching linux-headers package, so the modules
# carry the symbol versions and vermagic of the shipped kernel.
set -euo pipefail
config=$1 symvers=$2 release=$3 out=$4 work=$5
src=/usr/src/linux-source-6.1.tar.xz
[ -f "$src" ] || { echo "missing $src (package linux-source-6.1: make deps)" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work"
tar -xf "$src" -C "$work"
cd "$work"/linux-source-6.1
cp "$config" .config
./scripts/config --file .config \
	-m MTD_CFI -m MTD_GEN_PROBE -m MTD_CFI_INTELEXT -m MTD_CFI_UTIL -m MTD_PHYSMAP \
	-e MTD_PHYSMAP_OF -d MTD_CFI_ADV_OPTIONS \
	-d DEBUG_INFO -d DEBUG_INFO_DWARF5 -d DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT -d DEBUG_INFO_BTF \
	-e DEBUG_INFO_NONE -d MODULE_SIG_ALL \
	--set-str SYSTEM_TRUSTED_KEYS "" --set-str SYSTEM_REVOCATION_KEYS "" \
	--set-str MODULE_SIG_KEY "" --set-str BUILD_SALT ""
mk=(make -s ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- -j2)
"${mk[@]}" olddefconfig
"${mk[@]}" modules_prepare
echo "$release" > include/config/kernel.release
echo "#define UTS_RELEASE \"$release\"" > include/generated/utsrelease.h
cp "$symvers" Module.symvers
"${mk[@]}" M=drivers/mtd/chips modules
"${mk[@]}" M=drivers/mtd/maps modules
mkdir -p "$out"
for m in drivers/mtd/chips/{cfi_probe,gen_probe,cfi_cmdset_0001,cfi_util}.ko drivers/mtd/maps/physmap.ko; do
	aarch64-linux-gnu-strip --strip-debug "$m"
	cp "$m" "$out"/
done
modinfo -F vermagic "$out"/physmap.ko
cd / && rm -rf "$work"
