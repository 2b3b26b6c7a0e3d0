"""make demo's story runs and ends well (the demo is also a test: it must keep working)."""

import os
import subprocess

from conftest import BUILD_DIR, SOURCE_DIR, needs_faketime


@needs_faketime  # chapter 4 moves the device clock
def test_demo_story(tmp_path):
    p = subprocess.run(["/usr/bin/python3", os.path.join(SOURCE_DIR, "demo", "demo.py"),
                        "--build", BUILD_DIR, "--work", str(tmp_path / "demo")],
                       capture_output=True, text=True, timeout=300)
    print(p.stdout)
    print(p.stderr)
    assert p.returncode == 0
    for line in ("installed, rebooted, confirmed healthy",
                 "rolled back by itself, 1.2 never retried",
                 "refused: hash does not match the signed one",
                 "refused: timestamp.json expired",
                 "phase by phase, each confirmed; the fleet runs 1.1, 1.1, 1.1",
                 "1 health-check failure: rollout paused; the fleet runs 1.1, 1.1, 1.1"):
        assert line in p.stdout
    assert "✘" not in p.stdout
