#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# `meson install` into a temporary DESTDIR, then, against what was installed:
#   1. compile tests/install/hello.c with the flags of the installed pkg-config file and run it;
#   2. check the ABI: the functions libotter.so exports, the version script and the OTTER_PUBLIC
#      declarations of the installed headers are the same list (nothing internal leaks).
#
# usage: test-install.sh BUILD_DIR SOURCE_DIR PREFIX LIBDIR INCLUDEDIR CC [CFLAGS...]
set -eu
build=$1 src=$2 prefix=$3 libdir=$4 includedir=$5
shift 5
# CC and its flags (sanitizer flags in an ASan build) are the remaining arguments.

case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac
case $includedir in /*) ;; *) includedir=$prefix/$includedir ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/otter-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest

meson install -C "$build" --no-rebuild --quiet --destdir "$dest" >"$tmp/install.log" 2>&1 || {
	cat "$tmp/install.log" >&2
	echo "test-install: meson install --destdir $dest failed" >&2
	exit 1
}

for f in "$dest$libdir/libotter.so" "$dest$libdir/libotter.so.0" "$dest$libdir/pkgconfig/otter.pc" \
	"$dest$includedir/otter/error.h" "$dest$includedir/otter/tuf.h"; do
	[ -e "$f" ] || { echo "test-install: not installed: $f" >&2; exit 1; }
done
soname=$(readelf -d "$dest$libdir/libotter.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = libotter.so.0 ] || { echo "test-install: SONAME is '$soname', expected libotter.so.0" >&2; exit 1; }

# 1. Build and run a program against the installed tree only (no -I of the source tree).
pc="pkg-config --define-variable=prefix=$dest$prefix"
export PKG_CONFIG_PATH="$dest$libdir/pkgconfig"
cflags=$($pc --cflags otter)
libs=$($pc --libs otter)
# shellcheck disable=SC2086
"$@" -std=c11 -Wall -Werror $cflags -o "$tmp/hello" "$src/tests/install/hello.c" $libs
LD_LIBRARY_PATH="$dest$libdir" "$tmp/hello"

# 2. ABI: exported functions == version script == OTTER_PUBLIC declarations.
nm -D --defined-only "$dest$libdir/libotter.so" | awk '$2 != "A" {print $3}' | sed 's/@.*//' \
	| sort >"$tmp/exported"
sed -n 's/^[[:space:]]*\(otter_[a-z0-9_]*\);$/\1/p' "$src/src/lib/libotter.sym" | sort >"$tmp/script"
cat "$dest$includedir"/otter/*.h | tr '\n' ' ' | grep -o 'OTTER_PUBLIC [^;{(]*(' \
	| sed 's/[[:space:]]*($//; s/.*[^a-z0-9_]//' | grep '^otter_' | sort >"$tmp/headers"
rc=0
if ! diff -u "$tmp/script" "$tmp/exported" >"$tmp/d1"; then
	echo "test-install: libotter.so exports differ from src/lib/libotter.sym (- script, + exported):" >&2
	cat "$tmp/d1" >&2
	rc=1
fi
if ! diff -u "$tmp/script" "$tmp/headers" >"$tmp/d2"; then
	echo "test-install: OTTER_PUBLIC declarations differ from src/lib/libotter.sym (- script, + headers):" >&2
	cat "$tmp/d2" >&2
	rc=1
fi
[ "$rc" = 0 ] && echo "test-install: $(wc -l <"$tmp/exported") public functions, all in the version script"
exit $rc
