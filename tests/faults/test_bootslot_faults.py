"""Power cuts during a bootloader region switch (docs/ab-updates.md#bootloader-slots), on
plain disk-image files made by sfdisk.

`otter install IMAGE --class bootloader` writes the inactive half of the region, verifies
it, then rewrites the partition table. The installer is killed (as if the power went out)
  - before each partition-table write (OTTER_TEST_CRASHPOINT=boot-table-write:N),
  - inside the table writes at every 512-byte boundary and in the middle of every header
    (boot-table@N: the first N bytes of the table writes reach the disk, torn writes
    included; GPT only, since an MBR switch relies on a device writing one sector whole),
  - inside the image write and before its fsync (boot-image@N, boot-image-fsync).
After each cut, three independent tools (sfdisk --dump, fdisk -l, sgdisk -i) read a valid
table whose bootloader partition names the old or the new half, never neither; the half it
names holds a complete bootloader (the old one, or the verified new one); every other
partition is unchanged; otter status reports the half the tools see; and a retried install
completes, after which the tables are clean (sgdisk -v finds no problem)."""

import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import binary, run

MiB = 1024 * 1024
DISK = 4 * MiB
REGION_START = 1 * MiB            # sector 2048
HALF = 256 * 1024                 # 512 sectors per half
OLD = bytes([0xB0]) * HALF        # the bootloader in half 0 before the update
NEW = hashlib.sha256(b"new").digest() * (200_000 // 32)  # 200000 bytes, < HALF
GPT_TABLE_BYTES = 2 * (128 * 128 + 512)  # backup array + header, primary array + header

needs_tools = pytest.mark.skipif(
    not (shutil.which("sfdisk") or os.path.exists("/usr/sbin/sfdisk")) or
    not (shutil.which("sgdisk") or os.path.exists("/usr/sbin/sgdisk")),
    reason="needs sfdisk/fdisk (fdisk) and sgdisk (gdisk): make deps")


def tool(name):
    return shutil.which(name) or "/usr/sbin/" + name


class Disk:
    def __init__(self, tmp_path, label):
        self.dir = tmp_path
        self.label = label
        self.path = str(tmp_path / "disk.img")
        with open(self.path, "wb") as f:
            f.truncate(DISK)
        script = (f"label: {label}\n"
                  f"start={REGION_START // 512}, size={HALF // 512}, name=boot\n"
                  f"start={2 * MiB // 512}, size={MiB // 512}, name=data\n")
        if label == "dos":
            script = script.replace(", name=boot", "").replace(", name=data", "")
        subprocess.run([tool("sfdisk"), "-q", self.path], input=script.encode(), check=True)
        with open(self.path, "r+b") as f:
            f.seek(REGION_START)
            f.write(OLD)
            f.seek(2 * MiB)
            f.write(b"\xDA" * MiB)
        for n in ("a.img", "b.img"):
            with open(tmp_path / n, "wb") as f:
                f.truncate(MiB)
        (tmp_path / "data").mkdir()
        (tmp_path / "cmdline").write_text("otter.slot=A\n")
        subprocess.run(["grub-editenv", str(tmp_path / "grubenv"), "create"], check=True)
        kind = "gpt-switch" if label == "gpt" else "mbr-switch"
        self.conf = str(tmp_path / "system.conf")
        with open(self.conf, "w") as f:
            f.write(f"""[system]
compatible=test
bootloader=grub
data-directory={tmp_path}/data
cmdline={tmp_path}/cmdline
[bootloader]
grubenv={tmp_path}/grubenv
[slot.rootfs.0]
device={tmp_path}/a.img
bootname=A
[slot.rootfs.1]
device={tmp_path}/b.img
bootname=B
[boot-slot.bootloader]
type={kind}
device={self.path}
partition=1
region-start={REGION_START}
region-size={HALF}
""")
        self.image = str(tmp_path / "bl.bin")
        with open(self.image, "wb") as f:
            f.write(NEW)
        self.base = open(self.path, "rb").read()

    def restore(self):
        with open(self.path, "wb") as f:
            f.write(self.base)

    def install(self, env=None):
        return run([binary("otter"), "--config", self.conf, "install", self.image, "--class",
                    "bootloader", "--sha256", hashlib.sha256(NEW).hexdigest(), "--length",
                    str(len(NEW))], env=env)

    def status(self):
        out, _, rc = run([binary("otter"), "--config", self.conf, "status", "--json"])
        assert rc == 0
        return json.loads(out)["boot-slots"][0]

    def starts(self):
        """Start sector of partitions 1 and 2 as sfdisk, fdisk and sgdisk read them."""
        out, err, rc = run([tool("sfdisk"), "--dump", self.path])
        assert rc == 0, f"sfdisk cannot read the table: {err}"
        sf = [int(m) for m in re.findall(r"start=\s*(\d+)", out)]
        out, err, rc = run([tool("fdisk"), "-l", "-o", "Device,Start", self.path])
        assert rc == 0, f"fdisk cannot read the table: {err}"
        fd = [int(m) for m in re.findall(r"^\S+img\d\s+\*?\s*(\d+)", out, re.M)]
        assert sf == fd, (sf, fd)
        if self.label == "gpt":
            for n in (1, 2):
                out, err, rc = run([tool("sgdisk"), "-i", str(n), self.path])
                assert rc == 0, f"sgdisk cannot read the table: {err}"
                m = re.search(r"First sector: (\d+)", out)
                assert m, out
                assert int(m.group(1)) == sf[n - 1], ("sgdisk", n, out)
        return sf

    def check(self, what):
        old, new = REGION_START // 512, (REGION_START + HALF) // 512
        sf = self.starts()
        assert len(sf) == 2, what
        assert sf[1] == 2 * MiB // 512, f"{what}: partition 2 moved"
        assert sf[0] in (old, new), f"{what}: partition 1 names neither half ({sf[0]})"
        disk = open(self.path, "rb").read()
        assert disk[2 * MiB:3 * MiB] == b"\xDA" * MiB, f"{what}: partition 2 written"
        if sf[0] == old:
            assert disk[REGION_START:REGION_START + HALF] == OLD, what
        else:
            assert disk[REGION_START + HALF:REGION_START + HALF + len(NEW)] == NEW, \
                f"{what}: the table names a new half that is not the complete image"
        st = self.status()
        assert st["active"] == (0 if sf[0] == old else 1), (what, st)
        return sf[0] == new

    def retry(self, what):
        _, err, rc = self.install()
        assert rc == 0, f"{what}: retry failed: {err}"
        assert self.check(what + " + retry"), what
        assert not self.status()["degraded"], what
        if self.label == "gpt":
            out, _, _ = run([tool("sgdisk"), "-v", self.path])
            assert "No problems found" in out, f"{what}: {out}"


def cut(disk, point):
    disk.restore()
    _, err, rc = disk.install(env={"OTTER_TEST_CRASHPOINT": point})
    assert rc == 99 and "crashpoint" in err, f"{point}: not reached ({rc}): {err}"
    switched = disk.check(point)
    disk.retry(point)
    return switched


@needs_tools
def test_gpt_switch_installs_and_is_idempotent(tmp_path):
    disk = Disk(tmp_path, "gpt")
    assert not disk.check("before")
    assert disk.status()["active"] == 0
    out, err, rc = disk.install()
    assert rc == 0, err
    assert "switched to it" in out
    assert disk.check("after")
    out, err, rc = disk.install()
    assert rc == 0 and "already the active half" in out, (out, err)
    assert disk.check("again")
    for extra in (["--no-activate"], ["--compression", "zstd"]):
        _, err, rc = run([binary("otter"), "--config", disk.conf, "install", disk.image,
                          "--class", "bootloader", "--sha256", "0" * 64, "--length", "1"] +
                         extra)
        assert rc == 2 and "bootloader slot" in err, err


@needs_tools
def test_gpt_switch_power_cut_at_every_table_write(tmp_path):
    disk = Disk(tmp_path, "gpt")
    results = {}
    for n in range(1, 5):
        results[n] = cut(disk, f"boot-table-write:{n}")
    # Before the 4th write (the primary header) the primary array was written: its CRC
    # fails and the new backup is the valid table. Before the 3rd, the primary is old.
    assert results == {1: False, 2: False, 3: False, 4: True}


@needs_tools
def test_gpt_switch_torn_table_writes(tmp_path):
    disk = Disk(tmp_path, "gpt")
    points = set(range(0, GPT_TABLE_BYTES, 512))
    for base in (128 * 128, GPT_TABLE_BYTES - 512):  # inside the two headers
        points.update({base + 8, base + 20, base + 91, base + 300})
    points.update({100, 128 * 128 + 512 + 1000})      # inside the arrays
    seen = set()
    for n in sorted(points):
        seen.add(cut(disk, f"boot-table@{n}"))
    assert seen == {False, True}, "the cuts never saw both the old and the new table"


@needs_tools
@pytest.mark.parametrize("label", ["gpt", "dos"])
def test_switch_power_cut_in_the_image_write(tmp_path, label):
    disk = Disk(tmp_path, label)
    for point in ("boot-image@0", "boot-image@4096", f"boot-image@{len(NEW) - 1}",
                  "boot-image-fsync"):
        assert not cut(disk, point), point


@needs_tools
def test_mbr_switch_power_cut(tmp_path):
    disk = Disk(tmp_path, "dos")
    assert not cut(disk, "boot-table-write:1")
    assert not cut(disk, "boot-table@0")
    disk.restore()
    _, err, rc = disk.install()
    assert rc == 0, err
    assert disk.check("after")


@needs_tools
def test_bad_bootloader_image_changes_no_table(tmp_path):
    disk = Disk(tmp_path, "gpt")
    with open(disk.image, "r+b") as f:
        f.write(b"\x00")  # differs from what --sha256 says
    _, err, rc = disk.install()
    assert rc == 1 and "SHA-256 mismatch" in err
    assert not disk.check("tampered")
    before = open(disk.path, "rb").read()
    assert before[:REGION_START + HALF] == disk.base[:REGION_START + HALF]
