# SPDX-License-Identifier: LGPL-2.1-or-later
"""The device speaks Uptane (issue 11), against a real otter-director on SQLite and an image
repository made with otter-repo behind nginx: registration, full verification, installs
through the A/B path, manifests with install results; each attack a named test."""

import pytest

from uptanefixture import UptaneEnv


@pytest.fixture
def env(tmp_path, nginx, ceremony):
    e = UptaneEnv(tmp_path, nginx, ceremony)
    yield e
    e.stop()
    print(e.director.log_text()[-3000:])


def test_registers_installs_assigned_release_and_reports(env):
    env.release("1.1")
    # Nothing assigned: the device registers, installs nothing, reports the factory image.
    env.update(check=True)
    assert not env.reboot_requested()
    st = env.uptane_status()
    assert st["registered"] is True and st["report-counter"] == 1
    counter, path, keyid = env.ecu_row()
    assert int(counter) == 1 and keyid == st["key-id"] and path == ""
    # The director assigns 1.1: installed, rebooted, confirmed, reported.
    env.assign("1.1")
    env.update(check=True)
    assert env.reboot_requested()
    assert env.agent()["pending"]["version"] == "1.1"
    assert env.assignment()[0] == "downloading"
    assert env.reboot() == "B"
    env.update(check=True)
    assert env.agent()["state"] == "confirmed"
    assert env.assignment()[0] == "installed"
    counter, path, _ = env.ecu_row()
    assert path == "releases/test-device/1.1.json" and int(counter) == 3
    # Nothing new: the next cycle installs nothing and reports again with a higher counter.
    env.update(check=True)
    assert not env.reboot_requested()
    assert int(env.ecu_row()[0]) == 4
