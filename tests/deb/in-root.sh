#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Inside a fresh bookworm root (run-in-root.sh; no systemd, services never started):
#   1. installs otter's packages from /debs with apt-get (dependencies from the mirror);
#   2. checks the installation: programs, man pages, the conffile, /var/lib/otter, the unit
#      enabled, the example configuration doing nothing, libotter-dev's pkg-config file;
#   3. runs the demo's first chapter against the installed programs and paths
#      (demo.py --installed: /etc/otter/system.conf, /etc/otter/root.json, /var/lib/otter);
#      otter-director: its system user, its SQLite database made in /var/lib/otter-director by
#      the user with the shipped configuration, `serve` refusing to start without its keys;
#   4. removes the packages (configuration and state stay), then purges them: nothing of
#      otter may remain (no /etc/otter, /var/lib/otter, unit links, files named *otter*).
# Each step prints "deb-test: STEP"; a failure says what was expected and exits 1.
set -eu
PACKAGES="otter otter-repo otter-director libotter0 libotter-dev"

step() { echo "deb-test: $*"; }
fail() {
	echo "deb-test: FAILED: $*" >&2
	exit 1
}
# apt-get's output goes to /tmp/apt.log, shown when it fails.
apt() {
	apt-get "$@" >/tmp/apt.log 2>&1 || {
		cat /tmp/apt.log
		fail "apt-get $*"
	}
	grep -E '^(Setting up|Removing|Purging) .*otter' /tmp/apt.log || true
}

step "apt-get update"
apt update -q

step "install $PACKAGES"
debs=""
for p in $PACKAGES; do
	f=$(ls /debs/"${p}"_*.deb 2>/dev/null | head -n 1)
	[ -n "$f" ] || fail "no /debs/${p}_*.deb"
	debs="$debs $f"
done
# shellcheck disable=SC2086
apt install -y -q $debs

step "check the installation"
for p in $PACKAGES; do
	s=$(dpkg-query -W -f='${Status}' "$p")
	[ "$s" = "install ok installed" ] || fail "package $p: status '$s', expected 'install ok installed'"
done
for prog in otter otter-repo otter-tuf otter-director; do
	v=$("$prog" --version) || fail "$prog --version failed (missing library? ldd: $(ldd "$(command -v "$prog")" | grep 'not found' || true))"
	case $v in "$prog "[0-9]*) ;; *) fail "$prog --version printed '$v'" ;; esac
	[ -s "/usr/share/man/man1/$prog.1.gz" ] || fail "no man page /usr/share/man/man1/$prog.1.gz"
	zcat "/usr/share/man/man1/$prog.1.gz" | grep -q '^\.SH DESCRIPTION' \
		|| fail "/usr/share/man/man1/$prog.1.gz has no DESCRIPTION section"
done
dpkg-query -W -f='${Conffiles}\n' otter | grep -q '^ /etc/otter/system.conf ' \
	|| fail "/etc/otter/system.conf is not a conffile of otter"
[ -d /var/lib/otter ] || fail "/var/lib/otter missing after installation"
wants=/etc/systemd/system/multi-user.target.wants
for unit in otter.service otter-director.service; do
	[ "$(readlink "$wants/$unit" || true)" = "/lib/systemd/system/$unit" ] \
		|| fail "$unit not enabled on installation ($wants/$unit)"
done
dpkg-query -W -f='${Conffiles}\n' otter-director | grep -q '^ /etc/otter/director.conf ' \
	|| fail "/etc/otter/director.conf is not a conffile of otter-director"
[ -s /usr/share/otter/uboot/boot.cmd ] && [ -s /usr/share/otter/grub/grub.cfg ] \
	|| fail "boot scripts missing from /usr/share/otter"
[ -s /usr/share/doc/otter/agent.md ] \
	|| fail "/usr/share/doc/otter/agent.md (otter.service's Documentation=) missing"
# The packaged configuration is an example: otter refuses to act on it.
if out=$(otter status 2>&1); then
	fail "otter status succeeded with the example configuration: $out"
fi
case $out in *"[system]: section missing"*) ;; *) fail "otter status with the example configuration said: $out" ;; esac
# libotter-dev: otter.pc resolves (its Requires and Requires.private are installed with it).
flags=$(pkg-config --cflags --libs otter) || fail "pkg-config --cflags --libs otter"
case " $flags " in *" -lotter "*) ;; *) fail "pkg-config --libs otter gave '$flags'" ;; esac
[ -f /usr/include/otter/tuf.h ] && [ -f /usr/include/jansson.h ] \
	|| fail "headers missing: /usr/include/otter/tuf.h or jansson.h (a Depends of libotter-dev)"

step "the demo's first chapter against the installed programs and paths"
python3 /src/demo/demo.py --installed --chapters 1 --work /root/demo || fail "demo.py --installed --chapters 1"
[ -s /var/lib/otter/agent.json ] || fail "the agent's state is not in /var/lib/otter/agent.json"
otter status --json | grep -q '"state": *"confirmed"' \
	|| fail "otter status (default configuration) does not show the release confirmed"

step "otter-director: system user, SQLite database in /var/lib/otter-director"
getent passwd otter-director >/dev/null || fail "no system user otter-director"
[ "$(stat -c '%U %G %a' /var/lib/otter-director)" = "otter-director otter-director 750" ] \
	|| fail "/var/lib/otter-director is $(stat -c '%U %G %a' /var/lib/otter-director)"
[ "$(stat -c '%U %G %a' /etc/otter/director)" = "root otter-director 750" ] \
	|| fail "/etc/otter/director (online keys) is $(stat -c '%U %G %a' /etc/otter/director)"
runuser -u otter-director -- otter-director migrate || fail "otter-director migrate as otter-director"
[ "$(stat -c %U /var/lib/otter-director/director.db 2>&1)" = otter-director ] \
	|| fail "no /var/lib/otter-director/director.db of otter-director after migrate"
runuser -u otter-director -- otter-director device list | grep -q '"devices"' \
	|| fail "otter-director device list"
# The unit's command, as its user, with the shipped configuration: without the online keys
# (and a director root) it refuses to serve, naming the missing key file.
if out=$(runuser -u otter-director -- timeout 20 otter-director serve 2>&1); then
	fail "otter-director serve started without keys or a director root: $out"
fi
case $out in *"/etc/otter/director/targets.pem"*) ;; *) fail "otter-director serve without keys said: $out" ;; esac

step "remove (configuration and state stay)"
# shellcheck disable=SC2086
apt remove -y -q $PACKAGES
[ -f /etc/otter/system.conf ] || fail "apt-get remove deleted the conffile /etc/otter/system.conf"
[ -s /var/lib/otter/agent.json ] || fail "apt-get remove deleted the agent's state"
[ -e /usr/bin/otter ] && fail "/usr/bin/otter still there after apt-get remove"

step "purge"
# shellcheck disable=SC2086
# dpkg: apt-get no longer knows a removed package that had no conffiles (libotter-dev).
dpkg --purge $PACKAGES >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "dpkg --purge $PACKAGES"; }
cat /tmp/dpkg.log
for p in $PACKAGES; do
	s=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case $s in "" | "un"*) ;; *) fail "package $p still known to dpkg after purge: '$s'" ;; esac
done
for d in /etc/otter /var/lib/otter /var/lib/otter-director "$wants/otter.service" \
	"$wants/otter-director.service"; do
	[ -e "$d" ] || [ -L "$d" ] && fail "$d left after purge: $(ls -la "$d" 2>&1)"
done
left=$(find / -xdev \( -path /root/demo -o -path /proc \) -prune -o -name '*otter*' -print)
[ -z "$left" ] || fail "files left after purge: $left"
step "all steps passed"
