"""Releases that carry a bootloader and a configuration image besides the root filesystem
(docs/ab-updates.md#releases-with-a-bootloader). The device has A/B `rootfs` and `config`
slots (the config slots are plain image files) and a GPT region-switch bootloader slot on a
disk-image file made by sfdisk; the agent updates it from a repository on 127.0.0.1.

Checked: the bootloader is switched only after the rootfs and config images were written and
verified (a crash point right before the switch finds both recorded as installed and the
table untouched); a rootfs image that fails verification leaves the bootloader disk byte for
byte as it was; a release without a bootloader image is still installed; the config slot
follows the rootfs bootname; otter status reports the active half."""

import os
import shutil
import subprocess

import pytest

from agentfixture import UpdateEnv

MiB = 1024 * 1024
REGION_START = 1 * MiB
HALF = 256 * 1024

pytestmark = pytest.mark.skipif(not (shutil.which("sfdisk") or
                                     os.path.exists("/usr/sbin/sfdisk")),
                                reason="needs sfdisk (fdisk): make deps")


def make_env(tmp_path, nginx):
    env = UpdateEnv(tmp_path, nginx, bootloader="grub", classes=("rootfs", "config"))
    disk = os.path.join(env.base, "boot-disk.img")
    with open(disk, "wb") as f:
        f.truncate(4 * MiB)
    sfdisk = shutil.which("sfdisk") or "/usr/sbin/sfdisk"
    subprocess.run([sfdisk, "-q", disk], check=True, input=(
        f"label: gpt\nstart={REGION_START // 512}, size={HALF // 512}, name=uboot\n"
        f"start={2 * MiB // 512}, size={MiB // 512}, name=other\n").encode())
    with open(disk, "r+b") as f:
        f.seek(REGION_START)
        f.write(b"\xB0" * HALF)  # the factory bootloader in half 0
    section = (f"\n[boot-slot.bootloader]\ntype=gpt-switch\ndevice={disk}\n"
               f"partition=1\nregion-start={REGION_START}\nregion-size={HALF}\n")
    with open(env.dev.conf) as f:
        text = f.read()
    env.extra_slots += section  # kept by later write_conf() calls
    with open(env.dev.conf, "w") as f:
        f.write(text.replace("\n[update]", section + "\n[update]", 1))
    env.disk = disk
    return env


def disk_bytes(env):
    with open(env.disk, "rb") as f:
        return f.read()


def boot_slot(env):
    return env.status()["boot-slots"][0]


def publish(env, version, with_bootloader=True, bootloader_size=100_000):
    images = {}
    if with_bootloader:
        env.classes = ["rootfs", "config", "bootloader"]
        images["bootloader"] = env.image(version, "bootloader", size=bootloader_size)
    else:
        env.classes = ["rootfs", "config"]
    return env.release(version, images=images)


def test_release_with_bootloader_rootfs_and_config(tmp_path, nginx):
    env = make_env(tmp_path, nginx)
    assert boot_slot(env)["active"] == 0
    data = publish(env, "2.0")
    env.update(check=True)
    assert env.reboot_requested()
    assert env.slot("B", length=len(data["rootfs"])) == data["rootfs"]
    assert env.slot("B", "config", length=len(data["config"])) == data["config"]
    bs = boot_slot(env)
    assert bs["active"] == 1 and not bs["degraded"]
    disk = disk_bytes(env)
    assert disk[REGION_START + HALF:REGION_START + HALF + len(data["bootloader"])] == \
        data["bootloader"]
    assert disk[REGION_START:REGION_START + HALF] == b"\xB0" * HALF  # the old one stays
    # rootfs and config switch together with the bootname.
    assert env.reboot() == "B"
    env.update(check=True)
    st = env.status()
    assert st["booted"] == "B" and st["update"] == "confirmed"
    assert {s["class"] for s in st["slots"] if s["bootname"] == "B" and
            s["version"] == "2.0"} == {"rootfs", "config"}

    # The next release without a bootloader image: the bootloader stays as it is.
    data3 = publish(env, "3.0", with_bootloader=False)
    before = disk_bytes(env)
    env.update(check=True)
    assert env.reboot_requested()
    assert env.slot("A", "config", length=len(data3["config"])) == data3["config"]
    assert disk_bytes(env) == before


def test_bootloader_is_switched_after_everything_else_is_verified(tmp_path, nginx):
    env = make_env(tmp_path, nginx)
    before = disk_bytes(env)
    publish(env, "2.0")
    _, err, rc = env.update(env={"OTTER_TEST_CRASHPOINT": "agent-boot-switch"})
    assert rc == 99 and "crashpoint" in err
    st = env.status()
    b = {s["class"]: s for s in st["slots"] if s["bootname"] == "B"}
    assert b["rootfs"]["version"] == "2.0" and b["config"]["version"] == "2.0"
    assert not b["rootfs"]["installing"] and not b["config"]["installing"]
    assert st["primary"] == "A"  # not activated yet
    assert boot_slot(env)["active"] == 0
    after = disk_bytes(env)
    # Only the inactive half was written; the table and the active half are untouched.
    assert after[:REGION_START + HALF] == before[:REGION_START + HALF]
    assert after[REGION_START + 2 * HALF:] == before[REGION_START + 2 * HALF:]
    # The next run completes the release: the same bootloader is written again and switched.
    env.update(check=True)
    assert boot_slot(env)["active"] == 1
    assert env.status()["primary"] == "B"


@pytest.mark.parametrize("cls", ["rootfs", "config"])
def test_failed_verification_leaves_the_bootloader_untouched(tmp_path, nginx, cls):
    env = make_env(tmp_path, nginx)
    before = disk_bytes(env)
    publish(env, "2.0")
    for path in env.image_file("2.0", cls):
        with open(path, "r+b") as f:
            f.seek(1000)
            f.write(b"attacker was here")
    _, err, rc = env.update()
    assert rc == 1
    assert "sha" in err.lower() or "hash" in err.lower()
    assert disk_bytes(env) == before, "the bootloader disk changed"
    assert boot_slot(env)["active"] == 0
    st = env.status()
    assert st["primary"] == "A" and st["agent"]["state"] == "failed"
    assert not env.reboot_requested()


def test_cut_after_the_switch_before_the_activation(tmp_path, nginx):
    env = make_env(tmp_path, nginx)
    data = publish(env, "2.0")
    _, err, rc = env.update(env={"OTTER_TEST_CRASHPOINT": "agent-boot-switched"})
    assert rc == 99 and "crashpoint" in err
    # The new bootloader is active, the old release still boots (not activated).
    assert boot_slot(env)["active"] == 1
    assert env.status()["primary"] == "A"
    assert env.reboot() == "A"
    # The next run installs the release again; the bootloader is already active.
    before = disk_bytes(env)
    env.update(check=True)
    assert env.reboot_requested()
    assert disk_bytes(env) == before
    assert env.status()["primary"] == "B"
    assert env.slot("B", length=len(data["rootfs"])) == data["rootfs"]
