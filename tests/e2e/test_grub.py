"""The real-GRUB tier: the shipped contrib/grub/grub.cfg (plus the serial console on the
kernel command line) in GRUB for x86_64-efi under OVMF in QEMU, a real grubenv on the ESP, a
Debian kernel, and the host's build/otter as the agent (tests/e2e/grubdev.py builds the
machine, tests/e2e/grub-init.sh runs in it).

Every story is judged from the serial console and `otter status --json` printed by the
guest. Each power-on is one QEMU run (-no-reboot): a reboot by GRUB, by the agent or by a
broken release ends it, and the test powers the machine on again, as a person at the
device would see it. Nothing is skipped: a missing tool fails with what to install."""

import os
import re

import pytest

from grubdev import GrubDevice

BUILD_DIR = os.environ.get("OTTER_BUILD_DIR") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build")
CACHE_DIR = os.path.join(BUILD_DIR, "e2e")


def new_device(tmp_path):
    return GrubDevice(tmp_path / "dev", BUILD_DIR, CACHE_DIR)


def why(boot):
    """The tail of a boot's serial log, for assertion messages."""
    return "\n--- serial console of this boot (tail) ---\n" + boot["log"][-4000:]


def slot_of(status, bootname):
    return next(s for s in status["slots"] if s["bootname"] == bootname)


def assert_booted(boot, slot, version):
    assert boot["slot"] == slot and boot["version"] == version, \
        f"wanted slot {slot} with {version}, got {boot['slot']} {boot['version']}" + why(boot)
    assert boot["status"] is not None, "no otter status --json on the console" + why(boot)
    assert boot["status"]["booted"] == slot, why(boot)
    assert grub_errors(boot) == [], "GRUB printed an error" + why(boot)


# The machine has no display: GRUB's linux loader says so on every boot (harmless).
HARMLESS = ("error: no suitable video mode found.",)


def grub_errors(boot):
    """GRUB's error lines printed before the kernel's init started."""
    before = re.split(r"EFI stub:|Linux version|E2E: init", boot["log"], maxsplit=1)[0]
    return [line for line in before.splitlines()
            if "error:" in line and line.strip() not in HARMLESS]


def test_first_boot_with_an_empty_environment(tmp_path):
    dev = new_device(tmp_path)
    dev.make_disk("1.0")
    assert dev.grubenv() == {}  # grub-editenv create: no variable at all
    b = dev.boot()
    assert_booted(b, "A", "1.0")
    st = b["status"]
    assert st["primary"] == "A" and st["update"] == "none", why(b)
    assert st["agent"]["state"] == "idle", why(b)
    assert b["end"] == "poweroff", why(b)
    # GRUB's defaults (ORDER "A B", full tries) are the ones otter assumes; GRUB counted a
    # try of A in the grubenv, and the agent, having booted it, confirmed it: A is good
    # with its tries back, B untouched.
    assert slot_of(st, "A")["in-order"] and slot_of(st, "B")["in-order"], why(b)
    assert slot_of(st, "A")["state"] == "good", why(b)
    assert slot_of(st, "A")["tries-left"] == 3, why(b)
    assert "A_TRY=1" not in b["log"].split("E2E: GRUBENV-BEGIN")[1], why(b)
    env = dev.grubenv()
    assert env.get("A_TRY") == "0" and env.get("B_TRY", "0") == "0", env


class TestUpdate:
    """An update from the file:// repository on the data partition, then ordinary reboots."""

    @pytest.fixture(scope="class")
    def dev(self, tmp_path_factory):
        dev = new_device(tmp_path_factory.mktemp("update"))
        dev.make_disk("1.0")
        return dev

    def test_update_reboot_health_check_confirmed(self, dev):
        dev.publish("2.0")
        b = dev.boot()
        assert_booted(b, "A", "1.0")
        assert b["status"]["update"] == "pending-reboot", why(b)
        assert b["status"]["activated"] == "B" and b["status"]["primary"] == "B", why(b)
        assert slot_of(b["status"], "B")["version"] == "2.0", why(b)
        assert b["end"] == "reboot", "the agent asked for no reboot" + why(b)
        b = dev.boot()
        assert_booted(b, "B", "2.0")
        st = b["status"]
        assert st["update"] == "confirmed" and st["agent"]["state"] == "confirmed", why(b)
        assert slot_of(st, "B")["state"] == "good", why(b)
        assert slot_of(st, "B")["tries-left"] == 3, why(b)
        assert b["end"] == "poweroff", why(b)
        dev.confirmed = True

    def test_five_ordinary_reboots_stay_on_it(self, dev):
        assert getattr(dev, "confirmed", False), "the update story did not confirm 2.0"
        for i in range(5):
            b = dev.boot()
            assert b["slot"] == "B" and b["version"] == "2.0", \
                f"ordinary boot {i + 1} of 5 left the confirmed slot B" + why(b)
            assert_booted(b, "B", "2.0")
            st = b["status"]
            assert st["primary"] == "B" and st["update"] == "confirmed", why(b)
            assert slot_of(st, "B")["state"] == "good", why(b)
            # The agent confirms the booted slot on every boot: GRUB's counted try is
            # given back, so B never runs out of tries.
            assert slot_of(st, "B")["tries-left"] == 3, \
                f"boot {i + 1}: B_TRY not reset by the agent" + why(b)
            assert b["end"] == "poweroff", why(b)


def update_to_failing_release(dev, **release):
    """Boots A 1.0 with a release 2.0 in the repository; returns the boots up to and
    including the first one that comes back to A (at most 6 power-ons)."""
    dev.make_disk("1.0")
    dev.publish("2.0", **release)
    b = dev.boot()
    assert_booted(b, "A", "1.0")
    assert b["status"]["update"] == "pending-reboot" and b["end"] == "reboot", why(b)
    boots = []
    for _ in range(6):
        b = dev.boot()
        boots.append(b)
        if b["slot"] == "A":
            return boots
    raise AssertionError("never came back to slot A" + why(b))


def test_release_that_never_confirms_falls_back_and_reports_rollback(tmp_path):
    dev = new_device(tmp_path)
    boots = update_to_failing_release(dev, mode="broken")
    tried = boots[:-1]
    # GRUB tried B exactly otter_tries (3) times, each try counted before the kernel ran.
    assert [b["slot"] for b in tried] == ["B", "B", "B"], [b["slot"] for b in boots]
    assert all("broken release" in b["log"] for b in tried)
    last = boots[-1]
    assert_booted(last, "A", "1.0")
    st = last["status"]
    assert st["update"] == "rolled-back" and st["rollback"] is not None, why(last)
    assert st["agent"]["state"] == "rolled-back", why(last)
    assert "2.0" in str(st["agent"]["failed-releases"]), why(last)
    assert st["primary"] == "A", why(last)
    assert last["end"] == "poweroff", why(last)
    # The failed release is not installed again.
    b = dev.boot()
    assert_booted(b, "A", "1.0")
    assert b["end"] == "poweroff" and b["status"]["update"] == "rolled-back", why(b)


def test_slot_without_kernel_falls_back_without_hanging(tmp_path):
    dev = new_device(tmp_path)
    boots = update_to_failing_release(dev, kernel=False)
    tried = boots[:-1]
    assert len(tried) == 3, [b["end"] for b in boots]
    for b in tried:
        # GRUB could not load B's kernel, took the fallback entry and rebooted by itself.
        assert b["end"] == "grub-reboot", why(b)
        assert "/boot/vmlinuz' not found" in b["log"], why(b)
        assert "otter: slot B did not boot; rebooting" in b["log"], why(b)
        assert "Failed to boot both default and fallback entries" not in b["log"], why(b)
    last = boots[-1]
    assert_booted(last, "A", "1.0")
    assert last["status"]["update"] == "rolled-back", why(last)
    assert last["status"]["rollback"] is not None, why(last)


def test_every_slot_out_of_tries(tmp_path):
    dev = new_device(tmp_path)
    dev.make_disk("1.0", grubenv_vars={"ORDER": "A B", "A_TRY": "3", "B_TRY": "3"})
    b = dev.boot()
    assert b["end"] == "grub-reboot", why(b)
    assert "otter: no slot in ORDER has tries left; granting them again" in b["log"], why(b)
    env = dev.grubenv()
    assert env["A_TRY"] == "0" and env["B_TRY"] == "0" and env["ORDER"] == "A B", env
    b = dev.boot()
    assert_booted(b, "A", "1.0")
    assert b["end"] == "poweroff", why(b)


class TestTornEnvironment:
    """A grubenv block torn by a power cut in the middle of GRUB's in-place save_env, after
    the device ran normally (A confirmed): the first 512-byte sector written (the
    variables), the second not (zeros where the '#' padding was). otter itself replaces the
    file atomically, so only GRUB can tear it."""

    @pytest.fixture(scope="class")
    def dev(self, tmp_path_factory):
        dev = new_device(tmp_path_factory.mktemp("torn"))
        dev.make_disk("1.0")
        b = dev.boot()
        assert_booted(b, "A", "1.0")
        assert slot_of(b["status"], "A")["state"] == "good", why(b)
        block = dev.get_grubenv_bytes()
        assert len(block) == 1024 and block.endswith(b"#")
        dev.put_grubenv_bytes(block[:512] + b"\0" * 512)
        return dev

    def test_torn_block_still_boots(self, dev):
        for i in range(2):
            b = dev.boot()
            assert b["slot"] == "A" and b["version"] == "1.0", why(b)
            assert b["end"] == "poweroff", why(b)
            # GRUB reads the variables, but its save_env finds no '#' padding to write
            # into: the try is not counted (nothing else goes wrong).
            assert set(grub_errors(b)) <= {"error: environment block too small."}, why(b)
            assert b["status"] is not None and b["status"]["booted"] == "A", why(b)
            dev.torn_boots = getattr(dev, "torn_boots", 0) + 1

    def test_torn_block_is_repaired(self, dev):
        assert getattr(dev, "torn_boots", 0) == 2, "the boots above did not run"
        after = dev.get_grubenv_bytes()
        assert len(after) == 1024 and after.endswith(b"#"), after


class TestTornSignature:
    """The other tear: the first sector (with the '# GRUB Environment Block' signature)
    lost. GRUB's load_env and save_env refuse the block, and the script's defaults boot A."""

    @pytest.fixture(scope="class")
    def boot(self, tmp_path_factory):
        dev = new_device(tmp_path_factory.mktemp("torn-signature"))
        dev.make_disk("1.0", grubenv_vars={"A_TRY": "0", "B_TRY": "0"})
        block = dev.get_grubenv_bytes()
        dev.put_grubenv_bytes(b"\0" * 512 + block[512:])
        return dev.boot()

    def test_torn_signature_still_boots(self, boot):
        assert boot["slot"] == "A" and boot["version"] == "1.0", why(boot)
        assert boot["end"] == "poweroff", why(boot)

    def test_torn_signature_agent_keeps_working(self, boot):
        assert boot["status"] is not None and boot["status"]["booted"] == "A", why(boot)
