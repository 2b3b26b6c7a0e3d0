# SPDX-License-Identifier: LGPL-2.1-or-later
"""Power cuts and the Uptane report counter (issue 11): the device is killed at every hit of
every crash point of a cycle that reports to a real otter-director (uptane-counter, and the
fsync-file, rename and fsync-dir of each atomic write). After each cut uptane.json is whole,
and the next manifest carries a counter higher than any the director accepted: never a
replay the director must refuse (409), never a counter that went back."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "uptane"))
from uptanefixture import UptaneEnv, make_ceremony  # noqa: E402

POINTS = ["uptane-counter", "fsync-file", "rename", "fsync-dir"]


@pytest.fixture
def env(tmp_path, nginx):
    (tmp_path / "ceremony").mkdir()
    e = UptaneEnv(tmp_path, nginx, make_ceremony(tmp_path / "ceremony"))
    yield e
    e.stop()


@pytest.mark.parametrize("point", POINTS)
def test_report_counter_survives_a_power_cut_at_every_write(env, point):
    env.update(check=True)                       # registers, first manifest
    last = int(env.ecu_row()[0])
    assert last == 1
    state = os.path.join(env.dev.data, "uptane.json")
    cuts = 0
    for n in range(1, 60):
        _, err, rc = env.update(env={"OTTER_TEST_CRASHPOINT": f"{point}:{n}"})
        if rc != 99:
            assert rc == 0, err
            last = int(env.ecu_row()[0])
            break
        cuts += 1
        with open(state) as f:
            counter = json.load(f)["report-counter"]   # whole: the old or the new file
        assert counter >= last
        _, err, rc = env.update()
        assert rc == 0, err
        assert "refused by the director" not in err and "not sent" not in err, err
        now = int(env.ecu_row()[0])
        assert now > last, f"cut {point}:{n}: the director's counter went from {last} to {now}"
        last = now
    assert cuts > 0, f"no cut at {point}"
    with open(state) as f:
        assert json.load(f)["report-counter"] == last
