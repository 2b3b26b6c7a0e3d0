"""The update agent end to end, for both bootloaders: a repository made with otter-repo and
served by nginx, a simulated device, `otter update` and the boot-script simulator."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import needs_faketime, run

from abfixture import SLOT_SIZE
from agentfixture import UpdateEnv

BOOTLOADERS = ["uboot", "grub"]


@pytest.fixture(params=BOOTLOADERS)
def env(request, tmp_path, nginx):
    return UpdateEnv(tmp_path, nginx, bootloader=request.param)


def install_and_boot(env, version, **kw):
    data = env.release(version, **kw)
    env.update(check=True)
    assert env.reboot_requested()
    assert env.agent()["state"] == "pending-reboot"
    assert env.reboot() == "B"
    return data


def test_update_reboot_confirm(env):
    data = env.release("1.1")
    out, _, _ = env.update("--check", check=True)
    assert "update available: 1.1" in out and "installed: 1.0" in out
    env.update(check=True)
    assert env.reboot_requested()
    st = env.status()
    assert st["agent"]["state"] == "pending-reboot"
    assert st["agent"]["pending"]["version"] == "1.1"
    assert st["primary"] == "B" and st["booted"] == "A"
    assert env.slot("B", length=len(data["rootfs"])) == data["rootfs"]
    assert env.reboot() == "B"
    env.update(check=True)           # after boot: health check passes, confirmed
    st = env.status()
    assert st["agent"]["state"] == "confirmed"
    assert st["agent"]["current"]["version"] == "1.1"
    assert "pending" not in st["agent"]
    slot_b = next(s for s in st["slots"] if s["bootname"] == "B")
    assert slot_b["state"] == "good" and slot_b["version"] == "1.1"
    # Nothing newer: a second cycle does nothing.
    out, _, _ = env.update("--check", check=True)
    assert "up to date (installed: 1.1)" in out
    assert not env.reboot_requested()
    # And the next release goes to slot A.
    env.release("1.2")
    env.update(check=True)
    assert env.reboot_requested()
    assert env.status()["primary"] == "A"


def test_confirmed_release_survives_ordinary_reboots(env):
    """Issue 8: every boot uses a try, so the running slot is confirmed on every boot, not
    only on the one that confirmed the release. Ten ordinary reboots stay on 1.1."""
    install_and_boot(env, "1.1")
    env.update(check=True)
    assert env.agent()["state"] == "confirmed"
    for _ in range(10):
        assert env.reboot() == "B"
        env.update(check=True)
        st = env.status()
        slot_b = next(s for s in st["slots"] if s["bootname"] == "B")
        assert slot_b["state"] == "good" and slot_b["tries-left"] == 3, slot_b
        assert st["update"] == "confirmed" and st["primary"] == "B"
        assert not env.reboot_requested()
    assert env.agent()["current"]["version"] == "1.1"


def test_factory_slot_is_confirmed_on_every_boot(env):
    """A device that never updated: slot A (the factory image) stays bootable however often
    it reboots; before the fix, three boots marked it bad."""
    for _ in range(6):
        assert env.reboot() == "A"
        env.update(check=True)
        slot_a = next(s for s in env.status()["slots"] if s["bootname"] == "A")
        assert slot_a["state"] == "good" and slot_a["tries-left"] == 3, slot_a


def test_unhealthy_running_slot_is_not_confirmed(env):
    """A confirmed release that fails its health check on a later boot is not confirmed in
    that boot: its counter runs down, and after `tries` unhealthy boots the bootloader falls
    back, as for new software."""
    install_and_boot(env, "1.1")
    env.update(check=True)
    env.set_healthy(False)
    assert env.reboot() == "B"
    env.update()
    st = env.status()
    slot_b = next(s for s in st["slots"] if s["bootname"] == "B")
    assert slot_b["tries-left"] == 2
    assert "not confirmed in this boot" in st["agent"]["last-error"]
    assert not env.reboot_requested()
    env.set_healthy(True)          # healthy again at the next check: confirmed
    env.update(check=True)
    slot_b = next(s for s in env.status()["slots"] if s["bootname"] == "B")
    assert slot_b["tries-left"] == 3 and slot_b["state"] == "good"
    env.set_healthy(False)
    booted = []
    for _ in range(4):
        booted.append(env.reboot())
        env.update()
    assert booted == ["B", "B", "B", "A"]
    st = env.status()
    assert st["booted"] == "A" and st["update"] == "rolled-back"


def test_nothing_is_installed_over_the_fallback_while_unhealthy(env):
    """Installing writes the other slot, which takes it out of the boot order; while the
    running slot fails its health check, that slot is its fallback and stays untouched."""
    install_and_boot(env, "1.1")
    env.update(check=True)
    before = env.slot("A")
    env.set_healthy(False)
    env.release("1.2")
    assert env.reboot() == "B"
    _, err, _ = env.update()
    assert "fallback" in err
    st = env.status()
    assert env.slot("A") == before
    assert st["primary"] == "B" and not env.reboot_requested()
    slot_a = next(s for s in st["slots"] if s["bootname"] == "A")
    assert slot_a["in-order"] and slot_a["tries-left"] > 0
    assert "unhealthy" in st["agent"]["last-result"]
    env.set_healthy(True)
    env.update(check=True)
    assert env.reboot_requested() and env.status()["primary"] == "A"


def test_lost_activation_is_installed_again(env):
    """Issue 8: a torn write of a single-copy U-Boot environment puts U-Boot back on its
    defaults ("A B"): the activation is lost. The agent does not wait for a reboot into a slot
    that will never be tried, nor blame the release: it installs and activates it again."""
    env.release("1.1")
    env.update(check=True)
    assert env.reboot_requested() and env.agent()["state"] == "pending-reboot"
    if env.dev.bootloader == "uboot":
        # What U-Boot writes from its default environment after the CRC check failed.
        open(env.dev.env_file, "wb").write(b"\x00" * 0x8000)
        run(["fw_setenv", "-c", env.dev.env_path, "-f", os.path.join(env.base, "default.env"),
             "bootdelay", "0"], check=True)
    else:
        run(["grub-editenv", env.dev.env_path, "create"], check=True)
    assert env.reboot() == "A"
    env.update(check=True)
    st = env.status()
    assert "1.1" not in st["agent"]["failed-releases"]
    assert st["agent"]["state"] == "pending-reboot" and st["primary"] == "B"
    assert env.reboot_requested()
    assert env.reboot() == "B"
    env.update(check=True)
    assert env.agent()["state"] == "confirmed"
    assert env.agent()["current"]["version"] == "1.1"


def test_failed_health_check_rolls_back(env):
    install_and_boot(env, "1.1")
    env.update(check=True)
    assert env.agent()["current"]["version"] == "1.1"
    env.release("1.2")
    env.update(check=True)
    assert env.reboot_requested()
    assert env.reboot() == "A"
    env.set_healthy(False)          # 1.2 is broken
    _, _, rc = env.update()
    assert env.reboot_requested()    # back to the previous software
    st = env.status()
    assert st["agent"]["state"] == "rolled-back"
    assert "1.2" in st["agent"]["failed-releases"]
    assert "health check" in st["agent"]["last-error"]
    # The slot status says so too, until the next activation (found by the U-Boot tier).
    assert st["update"] == "rolled-back" and st["rollback"]["failed"] == "A"
    env.set_healthy(True)
    assert env.reboot() == "B"       # the bootloader skips the bad slot
    env.update(check=True)
    st = env.status()
    assert st["booted"] == "B"
    assert st["agent"]["current"]["version"] == "1.1"
    assert not env.reboot_requested()    # 1.2 is never retried
    assert "no newer release" in st["agent"]["last-result"]
    slot_a = next(s for s in st["slots"] if s["bootname"] == "A")
    assert slot_a["state"] == "bad" and slot_a["version"] == "1.2"
    # A fixed 1.3 is installed again.
    env.release("1.3")
    env.update(check=True)
    assert env.reboot_requested()


def test_bootloader_fallback_is_recognised(env):
    env.release("1.1")
    env.update(check=True)
    assert env.reboot_requested()
    # The new software never starts the agent: the tries run out, the bootloader falls back.
    booted = [env.reboot() for _ in range(4)]
    assert booted[:3] == ["B", "B", "B"] and booted[3] == "A"
    env.update(check=True)
    st = env.status()
    assert st["booted"] == "A"
    assert st["agent"]["state"] == "rolled-back"
    assert "1.1" in st["agent"]["failed-releases"]
    assert "bootloader" in st["agent"]["last-error"]
    assert not env.reboot_requested()


def test_tampered_image_is_refused(env):
    env.release("1.1")
    for path in env.image_file("1.1"):
        with open(path, "r+b") as f:
            f.seek(1000)
            f.write(b"attacker was here")
    _, err, rc = env.update()
    assert rc == 1
    assert "sha" in err.lower() or "hash" in err.lower()
    st = env.status()
    assert st["agent"]["state"] == "failed"
    assert st["booted"] == "A" and st["primary"] == "A"
    assert not env.reboot_requested()
    slot_a = next(s for s in st["slots"] if s["bootname"] == "A")
    assert slot_a["state"] == "good"
    slot_b = next(s for s in st["slots"] if s["bootname"] == "B")
    assert not slot_b["in-order"] and slot_b["version"] != "1.1"
    # Activation never happened: A is still the one the bootloader picks.
    assert env.reboot() == "A"


@needs_faketime
def test_freeze_attack_expired_metadata_is_refused(env):
    env.release("1.1")
    # Two days later the timestamp (1 day) has expired: whatever the server says is stale.
    _, err, rc = env.dev.otter("update", wrap=["faketime", "-f", "+2d"])
    assert rc == 1
    assert "expired" in err
    assert env.agent()["state"] == "failed"
    assert env.status()["primary"] == "A"
    assert not env.reboot_requested()


def test_repository_unreachable_changes_nothing(env):
    env.write_conf(repository="http://127.0.0.1:9/nothing-listens-here")
    before = env.dev.env_bytes()
    _, err, rc = env.update()
    assert rc == 1
    agent = env.agent()
    assert agent["state"] == "failed"
    assert agent["consecutive-failures"] == 1
    assert "127.0.0.1:9" in agent["last-error"]
    _, _, rc = env.update()
    assert env.agent()["consecutive-failures"] == 2
    assert env.dev.env_bytes() == before
    # Back online: it recovers.
    env.write_conf()
    env.release("1.1")
    env.update(check=True)
    assert env.reboot_requested()
    assert env.agent()["consecutive-failures"] == 0


def test_never_a_downgrade_nor_another_device(env):
    env.release("0.9")
    env.release("5.0", compatible="other-device")
    env.release("6.0", hardware=["rev-z"])
    out, _, _ = env.update("--check", check=True)
    assert "up to date (installed: 1.0)" in out
    env.update(check=True)
    assert not env.reboot_requested()
    assert env.agent()["state"] == "idle"


def test_hardware_id_selects_release(tmp_path, nginx):
    env = UpdateEnv(tmp_path, nginx, extra_update="hardware-id=rev-b\n")
    env.release("1.1", hardware=["rev-a"])
    env.release("1.2", hardware=["rev-b", "rev-c"])
    out, _, _ = env.update("--check", check=True)
    assert "update available: 1.2" in out


def test_offline_update_from_a_folder(tmp_path, nginx):
    env = UpdateEnv(tmp_path, nginx)
    data = env.release("1.1")
    stick = os.path.join(str(tmp_path), "usb-stick")
    shutil.copytree(env.repo.path, stick, ignore=shutil.ignore_patterns("staging", "*.conf"))
    nginx.stop()                     # no network at all
    env.update("--from", stick, check=True)
    assert env.reboot_requested()
    assert env.slot("B", length=len(data["rootfs"])) == data["rootfs"]
    # The same checks apply: a tampered stick is refused.
    env.reboot()
    env.update("--from", stick, check=True)
    assert env.agent()["current"]["version"] == "1.1"
    env.release("1.2")
    shutil.rmtree(stick)
    shutil.copytree(env.repo.path, stick)
    for root, _dirs, files in os.walk(os.path.join(stick, "targets", "images")):
        for n in files:
            if "1.2" in root:
                with open(os.path.join(root, n), "r+b") as f:
                    # Flip the first byte (writing a constant leaves a random image that
                    # starts with it untouched, one run in 256).
                    first = f.read(1)
                    f.seek(0)
                    f.write(bytes([first[0] ^ 0xFF]))
    _, _, rc = env.update("--from", stick)
    assert rc == 1
    assert not env.reboot_requested()


def test_mirrors_fall_back(tmp_path, nginx):
    env = UpdateEnv(tmp_path, nginx)
    data = env.release("1.1")
    # Mirror 1 is down; mirror 2 serves a copy where the image was tampered with; mirror 3 is
    # good. The install ends with the good bytes.
    bad = os.path.join(nginx.root, "bad-mirror")
    shutil.copytree(env.repo.path, bad)
    for root, _dirs, files in os.walk(os.path.join(bad, "targets", "images")):
        for n in files:
            with open(os.path.join(root, n), "r+b") as f:
                f.write(b"evil")
    env.write_conf(repository=f"http://127.0.0.1:9/down {nginx.url('bad-mirror')} "
                              f"{env.repo_url}")
    env.update(check=True)
    assert env.reboot_requested()
    assert env.slot("B", length=len(data["rootfs"])) == data["rootfs"]


def test_release_needs_every_slot_class(tmp_path, nginx):
    env = UpdateEnv(tmp_path, nginx, classes=("rootfs", "kernel"))
    # Published by hand without a kernel image: refused.
    path, _ = env.image("1.1")
    env.repo("add-release", "--compatible", "test-device", "--version", "1.1",
             "--image", f"rootfs={path}")
    env.repo("publish", "--key", os.path.join(env.keys, "targets-1.pem"))
    _, err, rc = env.update()
    assert rc == 1 and "no image for slot class 'kernel'" in err
    # Both classes: installed together, switched together.
    data = env.release("1.2")
    env.update(check=True)
    assert env.reboot_requested()
    assert env.slot("B", "kernel", len(data["kernel"])) == data["kernel"]
    assert env.slot("B", "rootfs", len(data["rootfs"])) == data["rootfs"]
    assert env.reboot() == "B"
    env.update(check=True)
    assert env.agent()["current"]["version"] == "1.2"


def test_pending_update_blocks_another(env):
    env.release("1.1")
    env.update(check=True)
    assert env.reboot_requested()
    env.release("1.2")
    _, err, rc = env.update()
    assert rc == 0 and "release 1.1 is pending-reboot: nothing else is installed" in err
    assert env.agent()["pending"]["version"] == "1.1"


def test_status_text_shows_the_agent(env):
    env.release("1.1")
    env.update(check=True)
    out, _, _ = env.otter("status", check=True)
    assert "agent:   pending-reboot" in out
    assert "pending release: 1.1 in slots B" in out


def test_damaged_bookkeeping_does_not_stop_the_agent(env):
    env.release("1.1")
    env.update(check=True)
    assert env.reboot_requested()
    assert env.reboot() == "B"
    # The slot bookkeeping is damaged while the new software waits for confirmation.
    with open(os.path.join(env.dev.data, "slots.json"), "w") as f:
        f.write("{ damaged")
    _, err, rc = env.update()
    assert rc == 0, err
    assert "starting the slot bookkeeping afresh" in err
    assert env.agent()["state"] == "confirmed"
    assert os.path.exists(os.path.join(env.dev.data, "slots.json.damaged"))
    # A person running otter status sees the recorded reset.
    events = env.dev.events("bookkeeping-reset")
    assert events and "slots.json" in events[0]["detail"]


def test_image_too_large_for_the_slot_is_recorded_as_failed(env):
    """Issue 8, finding 6: a release whose image is larger than its slot fails once and is
    recorded as failed (log and status say why); later cycles skip it, and a newer release
    that fits is installed."""
    env.release("1.1", size=SLOT_SIZE + 4096)
    _, err, rc = env.update()
    assert rc == 1
    assert "does not fit this device" in err and "larger than slot rootfs.1" in err
    assert "release 1.1 refused for this device: recorded as failed, not retried" in err
    st = env.status()
    assert st["agent"]["state"] == "failed"
    assert st["agent"]["failed-releases"] == ["1.1"]
    assert "larger than slot rootfs.1" in st["agent"]["last-error"]
    assert "release 1.1 refused" in st["agent"]["last-result"]
    assert st["booted"] == "A" and st["primary"] == "A"
    assert not env.reboot_requested()
    # The next cycle does not download it again.
    _, err, rc = env.update()
    assert rc == 0, err
    st = env.status()
    assert "releases that failed before are skipped" in st["agent"]["last-result"]
    assert st["agent"]["state"] == "idle"
    # A newer release that fits is installed.
    data = env.release("1.2")
    env.update(check=True)
    assert env.reboot_requested()
    assert env.slot("B", length=len(data["rootfs"])) == data["rootfs"]


@pytest.mark.parametrize("name", ["USB STICK", "usb#1", "usb?x", "100%", "a%20b"])
def test_offline_update_from_a_folder_with_url_characters(tmp_path, nginx, name):
    """Issue 8, finding 3: --from works whatever characters the folder name holds (USB
    volume labels have spaces; '#', '?' and '%' mean something in a URL)."""
    env = UpdateEnv(tmp_path, nginx)
    data = env.release("1.1")
    stick = os.path.join(str(tmp_path), "media", name)
    shutil.copytree(env.repo.path, stick, ignore=shutil.ignore_patterns("staging", "*.conf"))
    nginx.stop()
    out, err, _ = env.update("--check", "--from", stick, check=True)
    assert "update available: 1.1" in out, err
    env.update("--from", stick, check=True)
    assert env.reboot_requested()
    assert env.slot("B", length=len(data["rootfs"])) == data["rootfs"]


def read_only_data_dir(env):
    """A wrapper that runs a command with the device's data directory mounted read-only
    (a private mount namespace: root ignores file modes, not a read-only mount). Skips,
    saying why, where mount namespaces are not permitted; proves the mount is read-only."""
    data = env.dev.data
    wrap = ["unshare", "-m", "sh", "-c",
            f'mount --bind -o ro "{data}" "{data}" && exec "$@"', "sh"]
    probe = subprocess.run(wrap + ["touch", os.path.join(data, "probe")],
                           capture_output=True, text=True)
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"cannot mount the data directory read-only here: {probe.stderr.strip()}")
    assert not os.path.exists(os.path.join(data, "probe"))
    return wrap


def test_status_on_a_read_only_data_directory(env):
    """Issue 8, finding 5: otter status works (reports only) when the data directory is
    read-only (EROFS), also with an update pending."""
    env.release("1.1")
    env.update(check=True)
    assert env.reboot_requested()
    wrap = read_only_data_dir(env)
    before = {n: open(os.path.join(env.dev.data, n), "rb").read()
              for n in os.listdir(env.dev.data)
              if os.path.isfile(os.path.join(env.dev.data, n))}
    out, err, rc = env.dev.otter("status", "--json", wrap=wrap)
    assert rc == 0, err
    st = json.loads(out)
    assert st["booted"] == "A" and st["primary"] == "B" and st["update"] == "pending-reboot"
    assert st["agent"]["state"] == "pending-reboot"
    out, err, rc = env.dev.otter("status", wrap=wrap)
    assert rc == 0 and "agent:   pending-reboot" in out, err
    # Booted into the new slot: still only a report.
    assert env.reboot() == "B"
    out, err, rc = env.dev.otter("status", "--json", wrap=wrap)
    assert rc == 0, err
    assert json.loads(out)["update"] == "trying"
    after = {n: open(os.path.join(env.dev.data, n), "rb").read()
             for n in os.listdir(env.dev.data)
             if os.path.isfile(os.path.join(env.dev.data, n))}
    assert after == before
    # Changing the slots on a read-only data directory fails, saying so.
    _, err, rc = env.dev.otter("mark-good", wrap=wrap)
    assert rc == 1 and "Read-only file system" in err
