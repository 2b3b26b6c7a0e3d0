#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Builds otter's Debian packages into OUT_DIR (make deb; tests/deb/test_deb.py):
#   1. copies the source tree (the files git knows, committed or not, without build folders)
#      into OUT_DIR/src/otter-VERSION, so that the build never writes into the checkout;
#   2. runs `dpkg-buildpackage -us -uc -b` there and moves the .deb, .changes and .buildinfo
#      files to OUT_DIR (the log is OUT_DIR/build.log);
#   3. unless LINTIAN=0, runs lintian on the .changes (OUT_DIR/lintian.txt) and fails on an
#      error.
# DEB_BUILD_OPTIONS passes through (nocheck skips the unit tests of the build).
#
# usage: build-debs.sh SOURCE_DIR OUT_DIR
set -eu
src=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)

for tool in dpkg-buildpackage dpkg-checkbuilddeps fakeroot; do
	command -v "$tool" >/dev/null || {
		echo "build-debs: $tool is missing: run 'make deps-deb' (installs the build tools)" >&2
		exit 1
	}
done
version=$(sed -n '1s/^otter (\([^)]*\)).*/\1/p' "$src/debian/changelog")
[ -n "$version" ] || { echo "build-debs: no version in $src/debian/changelog" >&2; exit 1; }
(cd "$src" && dpkg-checkbuilddeps) || {
	echo "build-debs: build dependencies missing (above): run 'make deps-deb'" >&2
	exit 1
}

rm -rf "$out/src"
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo "$out/lintian.txt"
tree=$out/src/otter-$version
mkdir -p "$tree"
if [ -e "$src/.git" ] && command -v git >/dev/null; then
	# Tracked and new (not ignored) files as they are in the working tree; deleted ones skipped.
	(cd "$src" && git ls-files -z --cached --others --exclude-standard) \
		| (cd "$src" && xargs -0 sh -c 'for f; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\0" "$f"; done; :' sh) \
		| (cd "$src" && tar --null --no-recursion -T - -cf -) | tar -xf - -C "$tree"
else
	(cd "$src" && tar --exclude='./build*' --exclude=./.git -cf - .) | tar -xf - -C "$tree"
fi

echo "build-debs: dpkg-buildpackage -us -uc -b in $tree (log: $out/build.log)"
if ! (cd "$tree" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
	tail -n 60 "$out/build.log" >&2
	echo "build-debs: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
	exit 1
fi
# dpkg-buildpackage writes next to the tree, into OUT_DIR/src/: the results go to OUT_DIR.
mv "$out/src"/*.deb "$out/src"/*.changes "$out/src"/*.buildinfo "$out"/
ls "$out"/*.deb

if [ "${LINTIAN:-1}" != 0 ]; then
	command -v lintian >/dev/null || {
		echo "build-debs: lintian is missing: run 'make deps-deb'" >&2
		exit 1
	}
	changes=$(ls "$out"/otter_*.changes)
	rc=0
	lintian --fail-on error --info --display-info "$changes" >"$out/lintian.txt" 2>&1 || rc=$?
	cat "$out/lintian.txt"
	if [ "$rc" != 0 ]; then
		echo "build-debs: lintian found errors (E: lines above, $out/lintian.txt)" >&2
		exit 1
	fi
	echo "build-debs: lintian: no errors ($(grep -c '^W:' "$out/lintian.txt" || true) warnings)"
fi
