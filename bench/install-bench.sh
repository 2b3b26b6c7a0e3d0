#!/bin/bash
# A/B install throughput (never run by the tests):
#   otter install of a SIZE MiB image into a file-backed slot, raw and zstd-compressed,
#   against `dd conv=fsync` + `sha256sum` of the same image on the same machine, plus the
#   peak RSS of each (GNU time -v). Prints a Markdown table for docs/performance.md.
#
#   bench/install-bench.sh [SIZE_MIB] [RUNS]      (defaults 512 and 3; needs build/otter)
#
# The image is real binary content (files under /usr, concatenated), so zstd sees a typical
# root filesystem's redundancy. Page caches are dropped before each run when permitted, so
# every run reads its input from disk and the read-back reads the slot from disk.
set -euo pipefail

SIZE_MIB=${1:-512}
RUNS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OTTER=${OTTER:-$ROOT/build/otter}
TIME=/usr/bin/time
[ -x "$OTTER" ] || { echo "build otter first (make build)" >&2; exit 1; }
[ -x "$TIME" ] || { echo "needs GNU time (apt-get install time)" >&2; exit 1; }

WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/otter-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
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
for s in a b ref; do fallocate -l $((SIZE + 64 * 1024 * 1024)) "$WORK/slot-$s"; done
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

# run LABEL CMD... -> "seconds maxrss_kib" of one run
run() {
	drop_caches
	"$TIME" -f "%e %M" -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr" ||
		{ cat "$WORK/stderr" >&2; exit 1; }
	cat "$WORK/time"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A T R
for kind in ref dd raw zstd; do
	: >"$WORK/t.$kind"
	: >"$WORK/r.$kind"
	for i in $(seq "$RUNS"); do
		case $kind in
		ref) out=$(run sh -c "dd if='$WORK/image' of='$WORK/slot-ref' bs=1M conv=fsync,notrunc status=none && sha256sum '$WORK/image' >/dev/null") ;;
		dd) out=$(run dd if="$WORK/image" of="$WORK/slot-ref" bs=1M conv=fsync,notrunc status=none) ;;
		raw) out=$(run "$OTTER" --config "$WORK/system.conf" install "$WORK/image" --class rootfs --sha256 "$SHA" --length "$SIZE" --no-activate) ;;
		zstd) out=$(run "$OTTER" --config "$WORK/system.conf" install "$WORK/image.zst" --class rootfs --sha256 "$ZSHA" --length "$ZLEN" --no-activate) ;;
		esac
		echo "$out" | cut -d' ' -f1 >>"$WORK/t.$kind"
		echo "$out" | cut -d' ' -f2 >>"$WORK/r.$kind"
		echo "  $kind run $i: ${out% *} s, peak RSS ${out#* } KiB" >&2
	done
	T[$kind]=$(median <"$WORK/t.$kind")
	R[$kind]=$(median <"$WORK/r.$kind")
done
cmp -n "$SIZE" "$WORK/image" "$WORK/slot-b" >/dev/null || { echo "slot B differs!" >&2; exit 1; }

mbs() { awk -v s="$1" -v n="$SIZE" 'BEGIN {printf "%.0f", n / 1048576 / s}'; }
ratio() { awk -v a="$1" -v b="${T[ref]}" 'BEGIN {printf "%.2f", a / b}'; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
fs=$(df -T "$WORK" | awk 'NR==2 {print $2}')
cat <<MD
Measured $(date -u +%Y-%m-%d) with \`bench/install-bench.sh $SIZE_MIB $RUNS\` (median of $RUNS runs, page
cache dropped before each): $(nproc) cores ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB RAM,
slot files on $fs. Image: $SIZE_MIB MiB of binaries from /usr; zstd -3 brings it to
$((ZLEN / 1048576)) MiB.

| What | Time (s) | MiB/s of image | vs dd+sha256sum | Peak RSS |
|---|---|---|---|---|
| \`dd conv=fsync\` + \`sha256sum\` (reference) | ${T[ref]} | $(mbs "${T[ref]}") | 1.00 | $((R[ref] / 1024)) MiB |
| \`dd conv=fsync\` alone (no hashing) | ${T[dd]} | $(mbs "${T[dd]}") | $(ratio "${T[dd]}") | $((R[dd] / 1024)) MiB |
| \`otter install\` raw | ${T[raw]} | $(mbs "${T[raw]}") | $(ratio "${T[raw]}") | $((R[raw] / 1024)) MiB |
| \`otter install\` zstd | ${T[zstd]} | $(mbs "${T[zstd]}") | $(ratio "${T[zstd]}") | $((R[zstd] / 1024)) MiB |
MD
