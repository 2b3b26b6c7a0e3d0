#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Runs tests/deb/in-root.sh in a throw-away copy of a bookworm root (tests/deb/test_deb.py).
# Must run as root inside its own mount and PID namespaces
# (unshare --mount --pid --fork --propagation private): every mount made here, and every
# process left inside (nginx of the demo), disappears with the namespace, also on a crash.
#
#   BASE_DIR   the cached debootstrap root; never written (the lower layer of an overlay
#              whose upper layer is a tmpfs, so each run starts from the same root)
#   DEBS_DIR   the .deb files to test, mounted read-only at /debs
#   SOURCE_DIR the project, mounted read-only at /src (the demo, the test scripts)
#   APT_DIR    sources.list and apt.conf for the root (the host's bookworm mirrors)
#
# usage: run-in-root.sh BASE_DIR DEBS_DIR SOURCE_DIR APT_DIR MOUNT_DIR
set -eu
base=$1 debs=$2 src=$3 apt=$4 mnt=$5

# 4 GiB at most; the run uses about 400 MiB (packages, the demo's slots and images).
mount -t tmpfs -o size=4g,mode=0755 otter-deb-test "$mnt"
mkdir "$mnt/upper" "$mnt/work" "$mnt/root"
mount -t overlay overlay -o "lowerdir=$base,upperdir=$mnt/upper,workdir=$mnt/work" "$mnt/root"
root=$mnt/root
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
# /dev: the host's device nodes (null, zero, urandom, ...), with its pts and shm.
mount --rbind /dev "$root/dev"
mkdir -p "$root/debs" "$root/src"
mount --bind "$debs" "$root/debs"
mount -o remount,bind,ro "$root/debs"
mount --bind "$src" "$root/src"
mount -o remount,bind,ro "$root/src"

cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$apt/sources.list" "$root/etc/apt/sources.list"
rm -f "$root"/etc/apt/sources.list.d/*
cp "$apt/apt.conf" "$root/etc/apt/apt.conf.d/00deb-test-host"
# No service starts on installation (Debian's container convention): no systemd runs here.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive PYTHONDONTWRITEBYTECODE=1 \
	/bin/sh /src/tests/deb/in-root.sh
