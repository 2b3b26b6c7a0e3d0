# otter: top-level entry points. Everything works on a fresh Debian bookworm machine with only
# a compiler, make and git: `make deps` installs the rest.
#
#   make            build (build/)
#   make deps       install the Debian packages the build, tests and demo need
#   make demo       deps + build + the end-to-end demo (about a minute on a fresh machine)
#   make deps-e2e   deps + what the real-bootloader tier needs (QEMU, firmware, U-Boot, GRUB,
#                   the arm64 cross toolchain and libraries, linux-source; see below)
#   make test       deps-e2e + deps-deb + build + every test suite (unit, integration, faults,
#                   fuzz-corpus replay, the QEMU real-bootloader tier, the Debian packages
#                   installed into a fresh bookworm root), then all of them but the QEMU tier
#                   and the packages again under ASan+UBSan in build-asan/
#   make e2e        deps-e2e + build + the real-bootloader tier alone (U-Boot and GRUB in
#                   QEMU; also part of make test); make e2e-uboot / e2e-grub: one of them
#   make deb        the Debian packages (debian/) into build-deb/, checked with lintian
#   make test-deb   deps + deps-deb + build + the deb suite alone (packages built, installed into
#                   a fresh bookworm root, the demo's first chapter, purge; also in make test)
#   make fuzz SECONDS=N   build the libFuzzer targets (clang) and run each for N seconds
#   make conformance      run the public TUF conformance suite (needs sources, see docs)
#   make clean

SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
SECONDS ?= 60

# Build: meson ninja-build pkg-config gcc clang + the -dev packages.
# Tests: cmocka, pytest (Debian's /usr/bin/python3), python3-securesystemslib and
# python3-cryptography (independent canonical JSON / signature checks), nginx (repository
# server on 127.0.0.1), faketime, procps, libclang-rt-14-dev (ASan/UBSan and libFuzzer).
# A/B slots: libubootenv-dev and libzstd-dev (build); libubootenv-tool (fw_printenv/fw_setenv),
# grub-common (grub-editenv, grub-script-check), grub-emu (runs grub.cfg in real GRUB), zstd,
# e2fsprogs (mkfs.ext4, e2fsck, debugfs), mount (losetup), util-linux and bsdutils (script),
# strace (syscall fault injection) and time (peak RSS in bench/). Bootloader slots: fdisk
# (sfdisk, fdisk) and gdisk (sgdisk) read every partition table a cut leaves (tests/faults).
# otter-director: libsqlite3-dev and libpq-dev (its two storage engines), libmicrohttpd-dev (its
# HTTP server), postgresql (the server the director's tests start themselves, initdb into a
# temporary folder; tests/director/pg.py).
DEB_PACKAGES := meson ninja-build pkg-config gcc clang libclang-rt-14-dev \
	libssl-dev libcurl4-openssl-dev libjansson-dev libcmocka-dev \
	python3 python3-pytest python3-securesystemslib python3-cryptography \
	nginx faketime procps curl ca-certificates \
	libubootenv-dev libzstd-dev libxxhash-dev libubootenv-tool grub-common zstd e2fsprogs util-linux mount \
	bsdutils strace time grub-emu fdisk gdisk \
	libsqlite3-dev libpq-dev libmicrohttpd-dev postgresql
# Real-bootloader tier (tests/e2e, QEMU with TCG, no loop devices), installed by deps-e2e only
# (make test, make e2e): qemu-system-x86 (the PC; from bookworm-backports with
# qemu-system-arm, by uboot-deps.sh, as both share qemu-system-common), ovmf (UEFI firmware), grub-efi-amd64-bin
# (grub-mkimage's x86_64-efi modules), mtools and dosfstools (the ESP without mounting), fdisk
# (sfdisk on an image file), busybox-static and cpio (the initramfs), kmod (depmod for the
# kernel's modules.dep), binutils (readelf: the libraries otter needs in the guest). The
# Debian kernels are fetched by the tier with `apt-get download` into build/e2e/ (not
# installed). The U-Boot half (arm64 architecture, bookworm-backports for QEMU 10, the cross
# compiler, :arm64 -dev packages, linux-source) is tests/e2e/uboot-deps.sh, which says why
# each is needed.
E2E_PACKAGES := ovmf grub-efi-amd64-bin mtools dosfstools fdisk busybox-static cpio kmod binutils
# Node.js and npm run tuf-js, the independent TUF client of the otter-repo interoperability
# test (tests/integration/test_repo_tufjs.py installs tuf-js with npm into the build folder).
# Installed only when node or npm is missing: a machine with Node.js from elsewhere keeps it
# (nodesource's nodejs package conflicts with Debian's npm).
NODE_PACKAGES := nodejs npm
# Debian packages (make deb, and the deb suite of make test: tests/deb/): dpkg-dev, debhelper
# and fakeroot build them, lintian checks them; the Build-Depends of debian/control come from
# `apt-get build-dep ./` (debian/control is their one list). debootstrap and
# debian-archive-keyring make the fresh bookworm root the install test puts them into.
DEB_BUILD_PACKAGES := dpkg-dev debhelper fakeroot lintian debootstrap debian-archive-keyring
DEB_OUT ?= build-deb

.PHONY: all build deps deps-e2e deps-deb deb test test-unit test-asan fuzz conformance demo clean \
	e2e e2e-grub e2e-uboot test-deb

all: build

# $(call install_missing,PACKAGES,LABEL): apt-get install those of PACKAGES not installed.
define install_missing
	@missing=""; \
	for p in $(1); do \
		dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed' \
			|| missing="$$missing $$p"; \
	done; \
	if [ "$(2)" = deps ] && { ! command -v node >/dev/null 2>&1 || \
			! command -v npm >/dev/null 2>&1; }; then \
		missing="$$missing $(NODE_PACKAGES)"; \
	fi; \
	if [ -n "$$missing" ]; then \
		echo "$(2): installing$$missing"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	else \
		echo "$(2): all packages present"; \
	fi
endef

deps:
	$(call install_missing,$(DEB_PACKAGES),deps)

deps-e2e: deps
	$(call install_missing,$(E2E_PACKAGES),deps-e2e)
	SUDO=$(SUDO) bash tests/e2e/uboot-deps.sh $(BUILD)/e2e/debs

deps-deb:
	$(call install_missing,$(DEB_BUILD_PACKAGES),deps-deb)
	@if dpkg-checkbuilddeps >/dev/null 2>&1; then \
		echo "deps-deb: Build-Depends of debian/control present"; \
	else \
		echo "deps-deb: installing the Build-Depends of debian/control"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y ./; \
	fi

# otter_*.deb, otter-repo_*, libotter0_*, libotter-dev_* (and -dbgsym) with the .changes, the
# build log and lintian's report, in $(DEB_OUT)/; built in a copy of the tree ($(DEB_OUT)/src/).
deb: deps-deb
	sh tests/deb/build-debs.sh . $(DEB_OUT)

test-deb: deps deps-deb build
	meson test -C $(BUILD) --suite deb --print-errorlogs

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: $(BUILD)/build.ninja
	meson compile -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	CC=clang meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug

# Every suite runs even when an earlier one fails; the exit status says whether all passed.
test: deps-e2e deps-deb build $(ASAN_BUILD)/build.ninja
	@rm -f $(BUILD)/meson-logs/testlog.json $(ASAN_BUILD)/meson-logs/testlog.json
	@rc=0; \
	meson test -C $(BUILD) --print-errorlogs --num-processes 2 || rc=1; \
	meson compile -C $(ASAN_BUILD) || rc=1; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(ASAN_BUILD) --print-errorlogs --num-processes 2 || rc=1; \
	exit $$rc

# The real-bootloader tier alone (make test runs it too, in build/ only). The serial consoles
# are in build/meson-logs/testlog.txt and the pytest folders under /tmp/pytest-of-*/.
e2e: deps-e2e build
	meson test -C $(BUILD) --suite e2e --print-errorlogs --num-processes 2

e2e-grub e2e-uboot: deps-e2e build
	meson test -C $(BUILD) --print-errorlogs $@

# The end-to-end story: repository, nginx, a simulated device, four scenarios (README).
demo: deps build
	/usr/bin/python3 demo/demo.py --build $(BUILD)

fuzz: deps
	[ -f $(FUZZ_BUILD)/build.ninja ] || CC=clang meson setup $(FUZZ_BUILD) -Dfuzzing=true \
		-Db_lundef=false -Dbuildtype=debugoptimized -Dtests=false
	meson compile -C $(FUZZ_BUILD)
	@for t in $(FUZZ_BUILD)/fuzz/fuzz-*; do \
		[ -f "$$t" ] && [ -x "$$t" ] || continue; \
		name=$$(basename $$t); \
		echo "== $$name for $(SECONDS) s"; \
		mkdir -p $(FUZZ_BUILD)/corpus-$$name; \
		$$t -max_total_time=$(SECONDS) -max_len=65536 \
			$(FUZZ_BUILD)/corpus-$$name fuzz/corpus/$${name#fuzz-} || exit 1; \
	done

conformance: build
	tests/conformance/run-conformance.sh $(BUILD)/otter-tuf

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(DEB_OUT)
