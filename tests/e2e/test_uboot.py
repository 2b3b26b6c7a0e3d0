"""The real-U-Boot tier: stories on one QEMU arm64 device (ubootvm.Device) running Debian's
U-Boot with the shipped boot.cmd and the real otter, judged from the serial console, the
`otter status --json` the system prints on every boot, and the environment saved in flash.

The stories run in order on the same device (each starts where the last ended), as a device
lives: first boot, an update, ordinary reboots, a release that never confirms, a slot without
a kernel, a failed health check, a slot with a corrupt kernel, every slot out of tries, a torn
environment write. Each power-on runs until the
system powers off; the agent's reboots and U-Boot's resets happen inside that run."""

import os

import pytest

import ubootvm

RUN_DIR = os.environ.get("OTTER_E2E_UBOOT_RUN") or os.path.join(ubootvm.BUILD_DIR, "e2e",
                                                                 "uboot-run")
SCRATCH = ("otter_slot", "otter_root", "otter_part", "otter_tries", "otter_s")


@pytest.fixture(scope="module")
def dev():
    return ubootvm.Device(ubootvm.Artifacts(), RUN_DIR)


def slot(status, bootname):
    return next(s for s in status["slots"] if s["bootname"] == bootname)


def check_env_clean(dev, run):
    env = dev.env()
    run.check(env, "fw_printenv cannot read the environment U-Boot saved")
    saved = [k for k in SCRATCH if k in env]
    run.check(not saved, f"boot.cmd saved its scratch variables {saved}: {env}")
    return env


def test_first_boot_with_an_empty_environment(dev):
    assert not dev.env(), "the flash is not erased"
    run = dev.boot()
    run.check("bad CRC, using default environment" in run.out,
              "U-Boot did not start from an empty environment")
    run.check(run.uboot_slots == ["A"], f"U-Boot booted {run.uboot_slots}, not A")
    run.check(run.boots == [("A", "1.0")], f"Linux booted {run.boots}")
    st = run.status
    run.check(st["booted"] == "A" and st["primary"] == "A", f"status: {st}")
    run.check(any("redundant" in w for w in st.get("warnings", [])),
              f"no warning about the single-copy environment: {st}")
    env = check_env_clean(dev, run)
    run.check(env.get("BOOT_ORDER") == "A B", f"environment: {env}")


def test_update_from_the_data_partition_is_confirmed(dev):
    dev.publish("2.0")
    run = dev.boot()
    run.check("E2E-REBOOT" in run.out, "the agent did not ask for the reboot")
    run.check(run.uboot_slots == ["A", "B"], f"U-Boot booted {run.uboot_slots}, not A then B")
    run.check(run.boots == [("A", "1.0"), ("B", "2.0")], f"Linux booted {run.boots}")
    first, st = run.statuses[0], run.status
    run.check(first["update"] == "pending-reboot" and first["activated"] == "B",
              f"after the install: {first}")
    run.check(st["booted"] == "B" and st["primary"] == "B" and st["update"] == "confirmed",
              f"after the reboot: {st}")
    run.check(slot(st, "B")["version"] == "2.0" and slot(st, "B")["state"] == "good",
              f"slot B: {slot(st, 'B')}")
    run.check(st["agent"]["state"] == "confirmed", f"agent: {st['agent']}")
    env = check_env_clean(dev, run)
    run.check(env.get("BOOT_ORDER", "").split()[:1] == ["B"], f"environment: {env}")


def test_five_ordinary_reboots_stay_on_the_update(dev):
    """Every boot costs a try in U-Boot, so the running slot must be confirmed on every boot,
    not only on the one that confirmed the release."""
    for i in range(5):
        run = dev.boot()
        run.check(run.uboot_slots == ["B"] and run.boots == [("B", "2.0")],
                  f"reboot {i + 1}: U-Boot {run.uboot_slots}, Linux {run.boots}")
        st = run.status
        run.check(st["booted"] == "B" and st["primary"] == "B", f"reboot {i + 1}: {st}")
        run.check(slot(st, "B")["tries-left"] == 3,
                  f"reboot {i + 1}: B's tries were not reset: {slot(st, 'B')}")
    env = check_env_clean(dev, run)
    run.check(env.get("BOOT_B_LEFT") == "3", f"environment: {env}")


def test_release_that_never_confirms_falls_back_and_reports(dev):
    dev.publish("3.0", behaviour="crash")
    run = dev.boot(timeout=1200)
    run.check(run.uboot_slots == ["B", "A", "A", "A", "B"],
              f"U-Boot booted {run.uboot_slots}: not three tries of A, then B")
    run.check(run.boots == [("B", "2.0")] + [("A", "3.0")] * 3 + [("B", "2.0")],
              f"Linux booted {run.boots}")
    run.check(run.out.count("E2E-CRASH") == 3, "release 3.0 did not crash three times")
    st = run.status
    run.check(st["booted"] == "B" and st["update"] == "rolled-back"
              and (st["rollback"] or {}).get("failed") == "A", f"status: {st}")
    run.check(slot(st, "A")["state"] == "bad" and not slot(st, "A")["in-order"],
              f"slot A: {slot(st, 'A')}")
    run.check(st["agent"]["state"] == "rolled-back", f"agent: {st['agent']}")
    check_env_clean(dev, run)


def test_slot_without_kernel_falls_back_without_hanging(dev):
    dev.publish("4.0", kernel=False)
    run = dev.boot(timeout=900)
    run.check(run.out.count("otter: slot A did not boot; resetting") == 3,
              "U-Boot did not reset after each failed load of slot A")
    run.check(run.uboot_slots == ["B", "A", "A", "A", "B"], f"U-Boot booted {run.uboot_slots}")
    run.check(run.boots == [("B", "2.0"), ("B", "2.0")], f"Linux booted {run.boots}")
    run.check("SCRIPT FAILED" not in run.out, "the boot script failed")
    st = run.status
    run.check(st["booted"] == "B" and st["update"] == "rolled-back"
              and (st["rollback"] or {}).get("failed") == "A", f"status: {st}")
    run.check(slot(st, "A")["version"] == "4.0", f"slot A: {slot(st, 'A')}")
    check_env_clean(dev, run)


def test_failed_health_check_rolls_back_at_once(dev):
    """The release boots but its health check fails (a control file on the data partition
    names its version): the agent marks it bad and reboots into the old slot without
    waiting for the tries to run out."""
    dev.publish("5.0")
    dev.data_file("/e2e/fail-health-5.0", "1")
    run = dev.boot(timeout=900)
    run.check(run.uboot_slots == ["B", "A", "B"], f"U-Boot booted {run.uboot_slots}")
    run.check(run.boots == [("B", "2.0"), ("A", "5.0"), ("B", "2.0")],
              f"Linux booted {run.boots}")
    run.check("release 5.0 is unhealthy" in run.out, "the agent did not see the failed check")
    st = run.status
    run.check(st["booted"] == "B" and st["primary"] == "B", f"status: {st}")
    run.check(slot(st, "A")["state"] == "bad" and not slot(st, "A")["in-order"]
              and slot(st, "A")["version"] == "5.0", f"slot A: {slot(st, 'A')}")
    run.check(slot(st, "B")["tries-left"] == 3, f"slot B not confirmed: {slot(st, 'B')}")
    run.check(st["agent"]["state"] == "rolled-back"
              and "5.0" in st["agent"]["failed-releases"], f"agent: {st['agent']}")
    check_env_clean(dev, run)


def test_slot_with_corrupt_kernel_falls_back_without_hanging(dev):
    dev.publish("6.0", kernel="corrupt")
    run = dev.boot(timeout=900)
    run.check(run.out.count("Bad Linux ARM64 Image magic") == 3,
              "booti did not refuse the corrupt kernel three times")
    run.check(run.out.count("otter: slot A did not boot; resetting") == 3,
              "U-Boot did not reset after each failed booti of slot A")
    run.check(run.uboot_slots == ["B", "A", "A", "A", "B"], f"U-Boot booted {run.uboot_slots}")
    run.check(run.boots == [("B", "2.0"), ("B", "2.0")], f"Linux booted {run.boots}")
    st = run.status
    run.check(st["booted"] == "B" and st["update"] == "rolled-back"
              and (st["rollback"] or {}).get("failed") == "A", f"status: {st}")
    run.check(slot(st, "A")["version"] == "6.0", f"slot A: {slot(st, 'A')}")
    run.check(st["agent"]["failed-releases"] == ["3.0", "4.0", "5.0", "6.0"],
              f"agent: {st['agent']}")
    check_env_clean(dev, run)


def test_every_slot_out_of_tries(dev):
    """Also an environment saved by the earlier boot.cmd, which stored its scratch
    variables: the script deletes them rather than reading them."""
    dev.set_env(BOOT_A_LEFT="0", BOOT_B_LEFT="0", otter_slot="A", otter_root="/dev/vda2",
                otter_part="2", otter_tries="3")
    run = dev.boot()
    run.check("no slot in BOOT_ORDER has tries left; granting them again" in run.out,
              "U-Boot did not grant the tries again")
    run.check(run.uboot_slots == ["B"] and run.boots == [("B", "2.0")],
              f"U-Boot {run.uboot_slots}, Linux {run.boots}")
    st = run.status
    run.check(st["booted"] == "B" and slot(st, "B")["tries-left"] == 3, f"status: {st}")
    check_env_clean(dev, run)


def test_torn_environment_write(dev):
    """A power cut during saveenv: the sector was erased and only half of the new copy
    written. U-Boot finds a bad CRC and starts from its defaults ("A B", full tries): slot A
    (a corrupt kernel) is tried and fails three times, then B boots, otter takes A out of the
    order again, and B stays the running system."""
    with open(dev.flash, "r+b") as f:
        env = f.read(ubootvm.ENV_SIZE)
        f.seek(0)
        f.write(env[:ubootvm.ENV_SIZE // 2] + b"\xff" * (ubootvm.ENV_SIZE // 2))
        f.seek(4)
        f.write(b"\x00")  # the first variable's first byte: the CRC can no longer match
    run = dev.boot(timeout=900)
    run.check("bad CRC, using default environment" in run.out, "U-Boot read a torn environment")
    run.check(run.uboot_slots == ["A", "A", "A", "B"], f"U-Boot booted {run.uboot_slots}")
    run.check(run.boots == [("B", "2.0")], f"Linux booted {run.boots}")
    st = run.status
    run.check(st["booted"] == "B" and "unparsable" not in st, f"status: {st}")
    run.check(st["update"] == "rolled-back" and slot(st, "A")["state"] == "bad",
              f"status: {st}")
    env = check_env_clean(dev, run)
    run.check(env.get("BOOT_ORDER") == "B", f"environment after the recovery: {env}")
    # The next boot stays on B.
    run = dev.boot()
    run.check(run.uboot_slots == ["B"] and run.boots == [("B", "2.0")],
              f"after the recovery: U-Boot {run.uboot_slots}, Linux {run.boots}")
