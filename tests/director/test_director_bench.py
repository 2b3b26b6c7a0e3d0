# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench/director-bench.py keeps working: its --quick mode (a few hundred devices, sub-second
runs) on SQLite and PostgreSQL. Timings are never asserted; what the benchmark relies on is:
every timed poll was a "nothing changed" 304, nginx served the same number of bytes, and the
rollout made no metadata for devices that did not poll."""

import json
import os
import subprocess
import sys

from conftest import BUILD_DIR, HERE

SCRIPT = os.path.join(HERE, "..", "..", "bench", "director-bench.py")


def test_director_bench_quick(tmp_path):
    out = tmp_path / "results.json"
    p = subprocess.run([sys.executable, SCRIPT, "--quick", "--build", BUILD_DIR, "--json",
                        str(out)], capture_output=True, text=True, timeout=600)
    print(p.stderr[-4000:])
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    assert set(res) == {"SQLite", "PostgreSQL"}
    for engine, r in res.items():
        assert r["devices"] == 300, engine
        for side in ("director", "nginx"):
            assert r[side]["requests_per_second"]["median"] > 0, (engine, side)
        ro = r["rollout"]
        first = ro["first_poll"]
        # Each of the 16 polling devices polled once after the rollout and got new metadata.
        assert first["requests"] == 16 and first["status_2xx"] == 16, first
        # Metadata exists for the devices that polled, none for the 184 others the
        # rollout assigned.
        assert ro["metadata_rows_before_first_polls"] == 16, ro
        assert ro["metadata_rows_after_first_polls"] == 16, ro
    assert "## otter-director" in p.stdout
