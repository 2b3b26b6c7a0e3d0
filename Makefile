# otter: top-level entry points. Everything works on a fresh Debian bookworm machine with only
# a compiler, make and git: `make deps` installs the rest.
#
#   make            build (build/)
#   make deps       install the Debian packages the build, tests and demo need
#   make demo       deps + build + the end-to-end demo (about a minute on a fresh machine)
#   make test       deps + build + every test suite (unit, integration, faults, fuzz-corpus
#                   replay, the real-bootloader tier), then all of them again under
#                   ASan+UBSan in build-asan/ (except the real-bootloader tier: once is enough)
#   make e2e        deps + build + only the real-bootloader tier (tests/e2e, a few minutes)
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
# strace (syscall fault injection) and time (peak RSS in bench/).
DEB_PACKAGES := meson ninja-build pkg-config gcc clang libclang-rt-14-dev \
	libssl-dev libcurl4-openssl-dev libjansson-dev libcmocka-dev \
	python3 python3-pytest python3-securesystemslib python3-cryptography \
	nginx faketime procps curl ca-certificates \
	libubootenv-dev libzstd-dev libubootenv-tool grub-common zstd e2fsprogs util-linux mount \
	bsdutils strace time grub-emu
# Node.js and npm run tuf-js, the independent TUF client of the otter-repo interoperability
# test (tests/integration/test_repo_tufjs.py installs tuf-js with npm into the build folder).
# Installed only when node or npm is missing: a machine with Node.js from elsewhere keeps it
# (nodesource's nodejs package conflicts with Debian's npm).
NODE_PACKAGES := nodejs npm

.PHONY: all build deps test test-unit test-asan fuzz conformance demo e2e clean

all: build

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed' \
			|| missing="$$missing $$p"; \
	done; \
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
		missing="$$missing $(NODE_PACKAGES)"; \
	fi; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	else \
		echo "deps: all packages present"; \
	fi
	@# The real-bootloader tier: arm64 architecture, bookworm-backports (QEMU 10), U-Boot,
	@# the cross compiler, :arm64 -dev packages, linux-source; the arm64 kernel and busybox
	@# .deb files go to $(BUILD)/e2e/debs (tests/e2e/uboot-deps.sh says why each is needed).
	SUDO=$(SUDO) bash tests/e2e/uboot-deps.sh $(BUILD)/e2e/debs

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: $(BUILD)/build.ninja
	meson compile -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	CC=clang meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug

# Every suite runs even when an earlier one fails; the exit status says whether all passed.
test: deps build $(ASAN_BUILD)/build.ninja
	@rm -f $(BUILD)/meson-logs/testlog.json $(ASAN_BUILD)/meson-logs/testlog.json
	@rc=0; \
	meson test -C $(BUILD) --print-errorlogs --num-processes 2 || rc=1; \
	meson compile -C $(ASAN_BUILD) || rc=1; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(ASAN_BUILD) --print-errorlogs --num-processes 2 || rc=1; \
	exit $$rc

# The real-bootloader tier alone (QEMU + U-Boot; also part of `make test`).
e2e: deps build
	meson test -C $(BUILD) --suite e2e --print-errorlogs

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
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
