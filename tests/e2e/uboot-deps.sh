#!/bin/bash
# Debian packages of the real-U-Boot tier (tests/e2e/test_uboot.py), installed by `make deps`
# when missing. Run as root (or through sudo: SUDO=sudo).
#
#   qemu-system-arm (>= 10, bookworm-backports)  qemu-system-aarch64; bookworm's 7.2 cannot
#                                     saveenv to the second pflash bank
#   qemu-system-x86 (same version)    the GRUB tier's PC (shares qemu-system-common)
#   u-boot-qemu                       U-Boot 2023.01 for qemu_arm64 (environment in flash bank 2)
#   u-boot-tools                      mkimage (boot.cmd -> boot.scr)
#   gcc-aarch64-linux-gnu, libc6-dev-arm64-cross   the cross compiler for otter and the modules
#   libssl-dev:arm64 libcurl4-openssl-dev:arm64 libjansson-dev:arm64 libubootenv-dev:arm64
#   libzstd-dev:arm64 libxxhash-dev:arm64   otter's dependencies, for the arm64 cross build
#   linux-source-6.1, bc, bison, flex the CFI flash modules Debian's arm64 kernel lacks
#   fdisk, cpio, kmod, xz-utils       GPT disk, initramfs, module dependencies
# With a folder argument (make deps passes build/e2e/debs), the arm64 kernel of the same
# version as linux-source-6.1, its headers (Module.symvers) and busybox-static:arm64 are
# fetched there as .deb files (`apt-get download`; not installed: the host keeps its own).
#   uboot-deps.sh [DEB_FOLDER]
set -e
SUDO=${SUDO:-}
debs=${1:-}
arch_changed=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	$SUDO dpkg --add-architecture arm64
	arch_changed=1
fi
bpo=0
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	$SUDO tee /etc/apt/sources.list.d/otter-bookworm-backports.sources >/dev/null <<-EOF
	Types: deb
	URIs: http://deb.debian.org/debian
	Suites: bookworm-backports
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	bpo=1
fi

PACKAGES="u-boot-qemu u-boot-tools gcc-aarch64-linux-gnu libc6-dev-arm64-cross linux-source-6.1
	bc bison flex fdisk cpio kmod xz-utils
	libssl-dev:arm64 libcurl4-openssl-dev:arm64 libjansson-dev:arm64 libubootenv-dev:arm64
	libzstd-dev:arm64 libxxhash-dev:arm64"
missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' \
		|| missing="$missing $p"
done
qemu_ok=0
# qemu-system-x86 (the GRUB tier's PC) comes along: both share qemu-system-common.
v=$(dpkg-query -W -f='${Status} ${Version}\n' qemu-system-arm 2>/dev/null || true)
v86=$(dpkg-query -W -f='${Status} ${Version}\n' qemu-system-x86 2>/dev/null || true)
case "$v" in
	"install ok installed 1:1"[0-9].*) case "$v86" in
		"install ok installed 1:1"[0-9].*) qemu_ok=1 ;;
	esac ;;
esac
if [ -n "$missing" ] || [ $qemu_ok = 0 ] || [ $arch_changed = 1 ] || [ $bpo = 1 ]; then
	echo "deps (e2e): installing$missing$([ $qemu_ok = 1 ] || echo ' qemu-system-arm/bookworm-backports')"
	$SUDO apt-get update
	if [ -n "$missing" ]; then
		# shellcheck disable=SC2086
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			$missing
	fi
	if [ $qemu_ok = 0 ]; then
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			-t bookworm-backports qemu-system-arm qemu-system-x86
	fi
else
	echo "deps (e2e): all packages present"
fi

[ -n "$debs" ] || exit 0
version=$(dpkg-query -W -f='${Version}' linux-source-6.1)
mkdir -p "$debs"
# The kernel ABI whose package has linux-source-6.1's version (e.g. 6.1.0-57-arm64).
abi=$(ls "$debs" 2>/dev/null | sed -n "s/^linux-image-\(6\.1\.0-[0-9]*-arm64\)_${version}_arm64\.deb$/\1/p")
want=""
if [ -z "$abi" ]; then
	kernel_abi() {
		apt-cache depends "linux-image-arm64:arm64=$version" 2>/dev/null \
			| sed -n 's/^ *Depends: linux-image-\(6\.1\.0-[0-9]*-arm64\)\(:arm64\)\{0,1\}$/\1/p' \
			| head -n1
	}
	abi=$(kernel_abi)
	if [ -z "$abi" ]; then
		# The archive moved on since linux-source-6.1 was installed: take the current one.
		$SUDO apt-get update
		$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			linux-source-6.1
		version=$(dpkg-query -W -f='${Version}' linux-source-6.1)
		abi=$(kernel_abi)
	fi
	[ -n "$abi" ] || { echo "deps (e2e): no arm64 kernel of version $version" >&2; exit 1; }
	want=" linux-image-$abi:arm64=$version"
fi
ls "$debs"/linux-headers-"$abi"_*_arm64.deb >/dev/null 2>&1 \
	|| want="$want linux-headers-$abi:arm64=$version"
ls "$debs"/busybox-static_*_arm64.deb >/dev/null 2>&1 || want="$want busybox-static:arm64"
if [ -n "$want" ]; then
	echo "deps (e2e): downloading$want into $debs"
	# shellcheck disable=SC2086
	(cd "$debs" && apt-get download $want)
fi
