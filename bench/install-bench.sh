#!/bin/bash
# A/B install throughput, otter against the floor and the peers in the same run (never run by
# the tests):
#   bench/install-bench.sh [SIZE_MIB] [RUNS]      (defaults 512 and 5; needs build/otter)
#
# Installs the same SIZE MiB image into file-backed slots with:
#   - `dd conv=fsync` then `openssl dgst -sha256` (the floor the issue sets: write and hash
#     one after the other), and `dd conv=fsync` alone;
#   - `otter install`, raw and zstd-compressed; with OTTER_OLD=path/to/otter also that build,
#     run in turn with this one so that both see the same machine noise;
#   - SWUpdate (Debian's swupdate; a CMS-signed .swu, raw and zstd) and RAUC (Debian's rauc
#     1.8; a signed plain bundle, raw; `rauc install` against a `rauc service` on a private
#     D-Bus), when installed (apt-get install swupdate rauc squashfs-tools).
# Each figure: median (min-max) of RUNS, page cache dropped before every run (run as root).
# Prints the machine, the versions and a Markdown table for docs/performance.md.
#
# The image is real binary content (files under /usr, concatenated), so zstd sees a typical
# root filesystem's redundancy. SWUpdate checks the hardware revision of the machine: when
# /etc/hwrevision does not exist, the script creates it for the run and removes it after.
set -euo pipefail

SIZE_MIB=${1:-512}
RUNS=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OTTER=${OTTER:-$ROOT/build/otter}
OTTER_OLD=${OTTER_OLD:-}
TIME=/usr/bin/time
[ -x "$OTTER" ] || { echo "build otter first (make build)" >&2; exit 1; }
[ -x "$TIME" ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }

WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/otter-bench.XXXXXX")
PIDS=()
HWREV_CREATED=
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -n "$HWREV_CREATED" ] && rm -f /etc/hwrevision
	rm -rf "$WORK"
}
trap cleanup EXIT
SIZE=$((SIZE_MIB * 1024 * 1024))

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

echo "== preparing a ${SIZE_MIB} MiB image in $WORK" >&2
find /usr/lib /usr/bin /usr/share -type f -size +4k -print0 2>/dev/null |
	xargs -0 cat 2>/dev/null | head -c "$SIZE" >"$WORK/image" || true
[ "$(stat -c %s "$WORK/image")" -eq "$SIZE" ] || { echo "not enough input data" >&2; exit 1; }
zstd -q -T0 -3 "$WORK/image" -o "$WORK/image.zst"
SHA=$(sha256sum "$WORK/image" | cut -d' ' -f1)
ZSHA=$(sha256sum "$WORK/image.zst" | cut -d' ' -f1)
ZLEN=$(stat -c %s "$WORK/image.zst")
SLOT=$((SIZE + 64 * 1024 * 1024))
for s in a b ref sw rauc-a rauc-b; do fallocate -l $SLOT "$WORK/slot-$s"; done

# otter: a GRUB environment, two file slots; the new and the old build share them.
grub-editenv "$WORK/grubenv" create
echo "otter.slot=A" >"$WORK/cmdline"
cat >"$WORK/system.conf" <<CONF
[system]
compatible=bench
bootloader=grub
data-directory=$WORK/data
cmdline=$WORK/cmdline
[bootloader]
grubenv=$WORK/grubenv
[slot.rootfs.0]
device=$WORK/slot-a
bootname=A
[slot.rootfs.1]
device=$WORK/slot-b
bootname=B
CONF

KINDS="ref dd raw zstd"
[ -n "$OTTER_OLD" ] && KINDS="$KINDS raw-old zstd-old"

# SWUpdate: .swu archives (cpio, CMS-signed sw-description) for the raw and the zstd image.
if command -v swupdate >/dev/null && command -v cpio >/dev/null; then
	echo "== SWUpdate: signing the .swu files" >&2
	mkdir -p "$WORK/sw"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/sw/key.pem" \
		-out "$WORK/sw/cert.pem" -days 30 -subj "/CN=otter-bench" \
		-addext "extendedKeyUsage=emailProtection" -addext "keyUsage=digitalSignature" \
		2>/dev/null
	for v in raw zstd; do
		d="$WORK/sw/$v"
		mkdir -p "$d"
		if [ $v = raw ]; then
			ln "$WORK/image" "$d/image"
			extra=""
			sum=$SHA
		else
			ln "$WORK/image.zst" "$d/image"
			extra='"compressed": "zstd",'
			sum=$ZSHA
		fi
		cat >"$d/sw-description" <<SWD
{
	"software": {
		"version": "1.0",
		"hardware-compatibility": [ "1.0" ],
		"images": [
			{
				"filename": "image",
				"device": "$WORK/slot-sw",
				"type": "raw",
				$extra
				"sha256": "$sum"
			}
		]
	}
}
SWD
		openssl cms -sign -in "$d/sw-description" -out "$d/sw-description.sig" \
			-signer "$WORK/sw/cert.pem" -inkey "$WORK/sw/key.pem" -outform DER \
			-nosmimecap -binary
		(cd "$d" && printf 'sw-description\nsw-description.sig\nimage\n' |
			cpio -o -H crc --quiet >"$WORK/sw/$v.swu")
		rm -f "$d/image"
	done
	if [ ! -e /etc/hwrevision ]; then
		echo "bench 1.0" >/etc/hwrevision
		HWREV_CREATED=1
	fi
	KINDS="$KINDS swupdate swupdate-zstd"
fi

# RAUC 1.8: a signed plain bundle; its service on a private system bus.
if command -v rauc >/dev/null && command -v mksquashfs >/dev/null &&
	command -v dbus-daemon >/dev/null; then
	echo "== RAUC: building the bundle, starting its service" >&2
	mkdir -p "$WORK/rauc/bundle" "$WORK/rauc/data"
	ln "$WORK/image" "$WORK/rauc/bundle/rootfs.img"
	cat >"$WORK/rauc/bundle/manifest.raucm" <<MF
[update]
compatible=bench
version=1

[bundle]
format=plain

[image.rootfs]
filename=rootfs.img
MF
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/rauc/key.pem" \
		-out "$WORK/rauc/cert.pem" -days 30 -subj "/CN=otter-bench" 2>/dev/null
	rauc bundle --cert="$WORK/rauc/cert.pem" --key="$WORK/rauc/key.pem" \
		"$WORK/rauc/bundle" "$WORK/rauc/up.raucb" >/dev/null 2>&1
	rm -rf "$WORK/rauc/bundle"
	cat >"$WORK/rauc/system.conf" <<RC
[system]
compatible=bench
bootloader=noop
data-directory=$WORK/rauc/data

[keyring]
path=$WORK/rauc/cert.pem

[slot.rootfs.0]
device=$WORK/slot-rauc-a
type=raw
bootname=A

[slot.rootfs.1]
device=$WORK/slot-rauc-b
type=raw
bootname=B
RC
	cat >"$WORK/rauc/dbus.conf" <<DB
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$WORK/rauc/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
DB
	dbus-daemon --config-file="$WORK/rauc/dbus.conf" --nofork --nopidfile \
		>"$WORK/rauc/dbus.log" 2>&1 &
	PIDS+=($!)
	sleep 1
	export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$WORK/rauc/bus
	rauc service --conf="$WORK/rauc/system.conf" --override-boot-slot=A \
		>"$WORK/rauc/service.log" 2>&1 &
	PIDS+=($!)
	sleep 2
	KINDS="$KINDS rauc"
fi

# run CMD... -> "seconds maxrss_kib" of one run
run() {
	drop_caches
	"$TIME" -f "%e %M" -o "$WORK/time" "$@" >"$WORK/stdout" 2>"$WORK/stderr" ||
		{ cat "$WORK/stderr" >&2; exit 1; }
	cat "$WORK/time"
}

one() {
	local kind=$1 bin=$OTTER
	case $kind in
	*-old) bin=$OTTER_OLD ;;
	esac
	case $kind in
	ref) run sh -c "dd if='$WORK/image' of='$WORK/slot-ref' bs=1M conv=fsync,notrunc status=none && openssl dgst -sha256 '$WORK/image' >/dev/null" ;;
	dd) run dd if="$WORK/image" of="$WORK/slot-ref" bs=1M conv=fsync,notrunc status=none ;;
	raw | raw-old) run "$bin" --config "$WORK/system.conf" install "$WORK/image" --class rootfs --sha256 "$SHA" --length "$SIZE" --no-activate ;;
	zstd | zstd-old) run "$bin" --config "$WORK/system.conf" install "$WORK/image.zst" --class rootfs --sha256 "$ZSHA" --length "$ZLEN" --no-activate ;;
	swupdate) run swupdate -i "$WORK/sw/raw.swu" -k "$WORK/sw/cert.pem" -l 2 ;;
	swupdate-zstd) run swupdate -i "$WORK/sw/zstd.swu" -k "$WORK/sw/cert.pem" -l 2 ;;
	rauc) run rauc install "$WORK/rauc/up.raucb" ;;
	esac
}

# The kinds in turn within each run: slow drifts of the machine hit all of them alike.
for i in $(seq "$RUNS"); do
	for kind in $KINDS; do
		out=$(one "$kind") || exit 1
		echo "${out% *}" >>"$WORK/t.$kind"
		echo "${out#* }" >>"$WORK/r.$kind"
		echo "  run $i $kind: ${out% *} s, peak RSS ${out#* } KiB" >&2
	done
done
cmp -n "$SIZE" "$WORK/image" "$WORK/slot-b" >/dev/null || { echo "slot B differs!" >&2; exit 1; }
case " $KINDS " in *" swupdate "*)
	cmp -n "$SIZE" "$WORK/image" "$WORK/slot-sw" >/dev/null ||
		{ echo "the SWUpdate slot differs!" >&2; exit 1; } ;;
esac
case " $KINDS " in *" rauc "*)
	cmp -n "$SIZE" "$WORK/image" "$WORK/slot-rauc-b" >/dev/null ||
		{ echo "the RAUC slot differs!" >&2; exit 1; } ;;
esac

# "median (min-max)" of a file of numbers
stat3() { sort -n "$1" | awk '{a[NR]=$1} END {printf "%.2f (%.2f–%.2f)", a[int((NR+1)/2)], a[1], a[NR]}'; }
median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
REF=$(median "$WORK/t.ref")
row() {
	local kind=$1 label=$2 rss
	local t
	t=$(median "$WORK/t.$kind")
	rss="$(($(median "$WORK/r.$kind") / 1024)) MiB"
	[ "$kind" = rauc ] && rss="(in the service)"
	printf '| %s | %s | %s | %s | %s |\n' "$label" "$(stat3 "$WORK/t.$kind")" \
		"$(awk -v s="$t" -v n="$SIZE" 'BEGIN {printf "%.0f", n / 1048576 / s}')" \
		"$(awk -v a="$REF" -v b="$t" 'BEGIN {printf "%.2f", a / b}')" "$rss"
}
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
fs=$(df -T "$WORK" | awk 'NR==2 {print $2}')
cat <<MD
Measured $(date -u +%Y-%m-%d) with \`bench/install-bench.sh $SIZE_MIB $RUNS\`: $(nproc) cores ($cpu),
$(free -g | awk '/Mem:/ {print $2}') GiB RAM, slot files on $fs, page cache dropped before every run; median
(min–max) of $RUNS runs, the rows run in turn within each run. Image: $SIZE_MIB MiB of binaries
from /usr; zstd -3 brings it to $((ZLEN / 1048576)) MiB. Versions: otter $(git -C "$ROOT" rev-parse --short HEAD)$([ -n "$OTTER_OLD" ] && echo " (old build: $OTTER_OLD)"),
$(openssl version | cut -d' ' -f1-2), $(dpkg-query -W -f='swupdate ${Version}' swupdate 2>/dev/null || echo "no swupdate"), $(dpkg-query -W -f='rauc ${Version}' rauc 2>/dev/null || echo "no rauc").

| What | Time (s) | MiB/s of image | floor ÷ time | Peak RSS |
|---|---|---|---|---|
MD
row ref "\`dd conv=fsync\`, then \`openssl dgst -sha256\` (the floor)"
row dd "\`dd conv=fsync\` alone (no hash)"
row raw "\`otter install\` raw"
row zstd "\`otter install\` zstd"
case " $KINDS " in *" raw-old "*)
	row raw-old "\`otter install\` raw, old build"
	row zstd-old "\`otter install\` zstd, old build" ;;
esac
case " $KINDS " in *" swupdate "*)
	row swupdate "SWUpdate raw (\`swupdate -i\`, signed .swu)"
	row swupdate-zstd "SWUpdate zstd" ;;
esac
case " $KINDS " in *" rauc "*)
	row rauc "RAUC raw (\`rauc install\`, signed plain bundle)" ;;
esac
