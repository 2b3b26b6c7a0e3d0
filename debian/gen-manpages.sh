#!/bin/sh
# Writes one man page per program into OUT_DIR from the programs' own help texts (help2man):
# otter.1 (with every command's --help), otter-tuf.1, otter-repo.1 and otter-director.1 (with
# every command's `PROGRAM help COMMAND`). Run by debian/rules after the build.
#
# usage: gen-manpages.sh BUILD_DIR OUT_DIR
set -eu
build=$1 out=$2
mkdir -p "$out"
inc=$(mktemp -d)
trap 'rm -rf "$inc"' EXIT

# roff-safe verbatim text: backslashes escaped, lines starting with . or ' protected.
verbatim() {
	echo '.nf'
	sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
	echo '.fi'
}

# $1 program, $2 command word before each command ("" or "help"), then the commands.
commands_section() {
	prog=$1 how=$2
	shift 2
	echo '[COMMANDS]'
	for c in "$@"; do
		echo ".SS $c"
		if [ -n "$how" ]; then
			"$build/$prog" "$how" "$c"
		else
			"$build/$prog" "$c" --help
		fi | verbatim
	done
}

# The commands each program lists in its --help ("  name  description" under "Commands:").
commands_of() {
	"$build/$1" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p'
}

files_otter='[FILES]
.TP
.I /etc/otter/system.conf
the system configuration: slots, bootloader, [update] (see /usr/share/doc/otter/ab-updates.md
and agent.md)
.TP
.I /etc/otter/root.json
the repository'"'"'s root metadata the device trusts (default trusted-root)
.TP
.I /var/lib/otter
the bookkeeping: slots.json, agent.json, the trusted TUF metadata
.TP
.I /usr/share/otter
the U-Boot (boot.cmd) and GRUB (grub.cfg) boot scripts
'

# shellcheck disable=SC2046
{ commands_section otter "" $(commands_of otter); printf '%s' "$files_otter"; } >"$inc/otter.h2m"
# shellcheck disable=SC2046
commands_section otter-repo help $(commands_of otter-repo | grep -vx help) >"$inc/otter-repo.h2m"
printf '[SEE ALSO]\n.BR otter (1),\n.BR otter-repo (1);\n/usr/share/doc/otter/tuf-client.md\n' \
	>"$inc/otter-tuf.h2m"
printf '[SEE ALSO]\n.BR otter-tuf (1),\n.BR otter-repo (1);\n/usr/share/doc/otter/agent.md\n' \
	>>"$inc/otter.h2m"
printf '[SEE ALSO]\n.BR otter (1);\n/usr/share/doc/otter-repo/repository.md\n' \
	>>"$inc/otter-repo.h2m"
# shellcheck disable=SC2046
commands_section otter-director help $(commands_of otter-director | grep -vx help) \
	>"$inc/otter-director.h2m"
printf '%s' '[FILES]
.TP
.I /etc/otter/director.conf
the configuration (optional; defaults: SQLite in /var/lib/otter-director, 127.0.0.1:8080)
.TP
.I /etc/otter/director/
the online private keys and the admin token
.TP
.I /var/lib/otter-director
the SQLite database and the image repository'"'"'s metadata
[SEE ALSO]
.BR otter-repo (1);
/usr/share/doc/otter-director/director.md, director-protocol.md
' >>"$inc/otter-director.h2m"

for p in otter otter-repo otter-tuf otter-director; do
	case $p in
	otter) name='secure A/B updates on the device: agent and command' ;;
	otter-repo) name='create and maintain a TUF repository of otter releases' ;;
	otter-tuf) name='a TUF client: refresh trusted metadata and download verified targets' ;;
	otter-director) name='the Uptane Director server of an otter fleet' ;;
	esac
	help2man --no-info --section 1 --name "$name" --include "$inc/$p.h2m" \
		--output "$out/$p.1" "$build/$p"
	# help2man writes a page even from a program that failed: insist on real content.
	grep -q '^\.SH DESCRIPTION' "$out/$p.1" || {
		echo "gen-manpages: $out/$p.1 has no DESCRIPTION: did '$build/$p --help' work?" >&2
		exit 1
	}
done
