"""Power cuts and I/O errors during `otter install`, for U-Boot and GRUB.

Cuts: the installer is killed (as if the power went out)
  - at random byte offsets of the slot write (OTTER_TEST_CRASHPOINT=slot-write@N),
  - at every hit of every named crash point on the way: install-begin, each env-write,
    state-write, slot-fsync, slot-header, and each fsync-file, rename and fsync-dir of the
    atomic file writes (OTTER_TEST_CRASHPOINT=name:N),
  - at every write, pwrite64, fsync, fdatasync and rename system call (strace
    -e inject=SYSCALL:signal=KILL:when=N), which also cuts inside libubootenv's store;
and, separately, write errors: EIO and ENOSPC injected into each write/pwrite64 and EIO into
each fsync/fdatasync (strace -e inject=SYSCALL:error=E:when=N).

After each: the booted slot's bytes are unchanged; the environment parses (with the
bootloader's own tool and with otter) and the boot script would pick a good slot (A, or B
only if B holds the complete new image); the bookkeeping is whole JSON (old or new); the
grubenv is exactly 1024 bytes; and a retried install completes and boots."""

import json
import os
import random
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from abfixture import Device, PATTERN_A, image, sha256  # noqa: E402

IMAGE_SIZE = 1_000_000
NAMED_POINTS = ["install-begin", "env-write", "state-write", "slot-fsync", "slot-header",
                "fsync-file", "rename", "fsync-dir"]
SYSCALLS = ["write", "pwrite64", "fsync", "fdatasync", "rename", "renameat", "renameat2"]


class Harness:
    def __init__(self, tmp_path, bootloader):
        self.dev = Device(tmp_path, bootloader).first_boot()
        self.img = image(IMAGE_SIZE, 42)
        self.path = self.dev.write_image(self.img)
        zpath = self.path + ".zst"
        subprocess.run(["zstd", "-q", "-f", self.path, "-o", zpath], check=True)
        self.zimg = open(zpath, "rb").read()
        self.zpath = zpath
        self.base = self.dev.snapshot()
        self.cuts = set()

    def install_args(self, zstd=False):
        data, path = (self.zimg, self.zpath) if zstd else (self.img, self.path)
        return ["install", path, "--class", "rootfs", "--sha256", sha256(data), "--length",
                str(len(data))]

    def attempt(self, env=None, wrap=None, zstd=False):
        self.dev.restore(self.base)
        return self.dev.otter(*self.install_args(zstd), env=env, wrap=wrap)

    def check_invariants(self, what):
        dev = self.dev
        assert dev.slot_bytes("A") == PATTERN_A, f"{what}: booted slot changed"
        if dev.bootloader == "grub":
            assert os.path.getsize(dev.env_file) == 1024, what
        env = dev.env()  # the bootloader's own tool must parse it
        assert env is not None
        st = dev.status()  # and otter too
        assert st["booted"] == "A", what
        chosen = dev.sim.pick_without_writing()
        assert chosen in ("A", "B"), f"{what}: no bootable slot"
        state = dev.state_json()  # whole JSON or absent, never torn
        assert state is None or state["format"] == 1, what
        if chosen == "B":
            assert dev.slot_bytes("B")[:IMAGE_SIZE] == self.img, \
                f"{what}: the next boot would try an incomplete slot B"
            assert state["slots"]["rootfs.1"]["status"] == "installed", what
        if st["primary"] == "B":
            assert not st["slots"][1]["installing"], what

    def retry_completes(self, what):
        dev = self.dev
        dev.otter(*self.install_args(), check=True)
        assert dev.slot_bytes("B")[:IMAGE_SIZE] == self.img, what
        st = dev.status()
        assert (st["primary"], st["update"]) == ("B", "pending-reboot"), what
        assert dev.sim.pick_without_writing() == "B", what

    def cut(self, label, env=None, wrap=None, zstd=False):
        """Runs one install that is expected to die; returns False if it completed."""
        _out, err, rc = self.attempt(env=env, wrap=wrap, zstd=zstd)
        if rc == 0:
            return False
        assert rc in (99, -9, 137), f"{label}: exit {rc}: {err}"
        self.cuts.add(label)
        self.check_invariants(label)
        self.retry_completes(label)
        return True


@pytest.fixture(params=["uboot", "grub"])
def harness(request, tmp_path):
    return Harness(tmp_path, request.param)


def test_power_cut_at_byte_offsets_and_crash_points(harness):
    rng = random.Random(4)
    offsets = sorted(set([4096, 4097, IMAGE_SIZE - 1] +
                         rng.sample(range(4096, IMAGE_SIZE), 70)))
    for off in offsets:
        assert harness.cut(f"slot-write@{off}",
                           env={"OTTER_TEST_CRASHPOINT": f"slot-write@{off}"})
    # zstd: the offsets are of the decompressed stream.
    for off in rng.sample(range(4096, IMAGE_SIZE), 10):
        assert harness.cut(f"zstd slot-write@{off}", zstd=True,
                           env={"OTTER_TEST_CRASHPOINT": f"slot-write@{off}"})
    named = 0
    for name in NAMED_POINTS:
        n = 1
        while harness.cut(f"{name}:{n}", env={"OTTER_TEST_CRASHPOINT": f"{name}:{n}"}):
            n += 1
            named += 1
            assert n < 50, name
        assert n > 1, f"crash point {name} never reached"
    print(f"{harness.dev.bootloader}: {len(harness.cuts)} distinct cuts, {named} at named "
          f"crash points: {sorted(c for c in harness.cuts if '@' not in c)}")
    assert named >= 15
    assert len(harness.cuts) >= 100, len(harness.cuts)


strace = shutil.which("strace")
# LeakSanitizer cannot run under ptrace: in the sanitizer build, strace runs the program with
# the leak check off (AddressSanitizer's memory-error checks stay on).
STRACE = (["env", "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1"]
          if os.environ.get("OTTER_SANITIZED") == "1" else []) + [strace]


def strace_usable():
    if not strace:
        return False
    p = subprocess.run([strace, "-f", "-qq", "-o", "/dev/null", "true"], capture_output=True)
    return p.returncode == 0


@pytest.mark.skipif(not strace_usable(), reason="strace missing or ptrace not permitted")
def test_power_cut_at_every_write_fsync_rename_syscall(harness):
    total = 0
    for sc in SYSCALLS:
        n = 1
        while harness.cut(f"kill at {sc}#{n}", wrap=[
                *STRACE, "-f", "-qq", "-o", "/dev/null", "-e", f"trace={sc}", "-e",
                f"inject={sc}:signal=KILL:when={n}"]):
            n += 1
            total += 1
            assert n < 200, sc
    print(f"{harness.dev.bootloader}: killed at {total} system calls: {sorted(harness.cuts)}")
    assert total >= 20, total


@pytest.mark.skipif(not strace_usable(), reason="strace missing or ptrace not permitted")
@pytest.mark.parametrize("syscall,errname", [("write", "EIO"), ("write", "ENOSPC"),
                                             ("pwrite64", "EIO"), ("pwrite64", "ENOSPC"),
                                             ("fsync", "EIO"), ("fdatasync", "EIO")])
def test_io_errors(harness, syscall, errname):
    dev = harness.dev
    n, failures = 1, 0
    while True:
        _out, err, rc = harness.attempt(wrap=[
            *STRACE, "-f", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}", "-e",
            f"inject={syscall}:error={errname}:when={n}"])
        if rc == 0:
            # An error on a progress line to stderr is not fatal; every other is.
            st = dev.status()
            assert st["primary"] == "B" and dev.slot_bytes("B")[:IMAGE_SIZE] == harness.img
            if n > 60:
                break
        else:
            assert rc == 1, f"{syscall}#{n} {errname}: exit {rc}: {err}"
            assert "otter install:" in err, err
            failures += 1
            harness.check_invariants(f"{syscall}#{n} {errname}")
            harness.retry_completes(f"{syscall}#{n} {errname}")
        n += 1
        if n > 60:
            break
    print(f"{dev.bootloader}: {errname} on {syscall}: {failures} failed installs, all clean")
    assert failures >= 1


@pytest.mark.parametrize("bootloader", ["uboot", "grub"])
def test_power_cut_during_rollback_detection(tmp_path, bootloader):
    """Rollback handling is two writes (the record, then the environment); a cut at any
    point of either is finished by the next status call, which records nothing twice."""
    dev = Device(tmp_path, bootloader).first_boot()
    dev.install(image(300_000, 5))
    for _ in range(dev.tries):
        assert dev.sim.reboot() == "B"
    assert dev.sim.reboot() == "A"
    base = dev.snapshot()
    cuts = []
    for name in ["state-write", "fsync-file", "rename", "fsync-dir", "env-write"]:
        n = 1
        while True:
            dev.restore(base)
            _out, err, rc = dev.otter("status", env={"OTTER_TEST_CRASHPOINT": f"{name}:{n}"})
            if rc == 0:
                break
            assert rc == 99, err
            cuts.append(f"{name}:{n}")
            assert dev.sim.pick_without_writing() == "A"
            st = dev.status()
            assert st["update"] == "rolled-back" and st["rollback"]["failed"] == "B"
            assert st["slots"][1]["state"] == "bad"
            env = dev.env()
            assert (env.get("BOOT_ORDER") or env.get("ORDER")) == "A"
            assert len(dev.events("rolled-back")) == 1
            n += 1
            assert n < 20
    print(f"{bootloader}: {len(cuts)} cuts during rollback handling: {cuts}")
    assert len(cuts) >= 5
