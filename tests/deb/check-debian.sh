#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Quick consistency checks of debian/ against the source tree (no package build):
#   1. debian/libotter0.symbols lists exactly the functions of src/lib/libotter.sym;
#   2. the version in debian/changelog is the project version of meson.build.
# The package build enforces the symbols too (dpkg-gensymbols -c4), this catches it at once.
#
# usage: check-debian.sh SOURCE_DIR PROJECT_VERSION
set -eu
src=$1 version=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/otter-check-debian.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
rc=0

sed -n 's/^[[:space:]]*\(otter_[a-z0-9_]*\);$/\1/p' "$src/src/lib/libotter.sym" | sort >"$tmp/script"
sed -n 's/^ \(otter_[a-z0-9_]*\)@OTTER_[0-9_]* .*/\1/p' "$src/debian/libotter0.symbols" \
	| sort >"$tmp/symbols"
[ -s "$tmp/script" ] || { echo "check-debian: no functions read from src/lib/libotter.sym" >&2; exit 1; }
if ! diff -u "$tmp/script" "$tmp/symbols" >"$tmp/diff"; then
	echo "check-debian: debian/libotter0.symbols differs from src/lib/libotter.sym" \
		"(- version script, + symbols file); add a new function as" \
		"' otter_NAME@OTTER_N VERSION' with the first package version that has it:" >&2
	cat "$tmp/diff" >&2
	rc=1
fi

# "otter (0.1.0) unstable; ...", or "otter (0.1.0+deb1)" for a packaging-only change (a native
# package has no Debian revision).
deb_version=$(sed -n '1s/^otter (\([^)]*\)).*/\1/p' "$src/debian/changelog")
case $deb_version in
"$version" | "$version"+*) ;;
*)
	echo "check-debian: debian/changelog is at '$deb_version' but meson.build at '$version':" \
		"add a debian/changelog entry for $version (dch -v $version)" >&2
	rc=1
	;;
esac
[ "$rc" = 0 ] && echo "check-debian: $(wc -l <"$tmp/script") symbols match; debian/changelog at $deb_version"
exit $rc
