# SPDX-License-Identifier: LGPL-2.1-or-later
"""Assignments and phased rollouts end to end, on SQLite and PostgreSQL: the real
otter-director with a signed image repository (otter-repo), driven through the admin API and
the CLI, with simulated devices that poll their metadata and report success and failure."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from rolloutfixture import ImageRepo, SecondServer, SimDevice, admin, admin_ok, cli_json


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    repo = ImageRepo(str(tmp_path_factory.mktemp("images")))
    repo.release("1.2.0")
    repo.release("1.3.0")
    return repo


@pytest.fixture
def fleet_director(director, images):
    director.stop()
    director.start(images.conf())
    return director


def fleet(director, n, prefix="car"):
    tok = director.token("--uses", str(n + 10))
    return [SimDevice(director, f"{prefix}-{i:02d}", tok) for i in range(n)]


def test_phased_rollout_auto_pause_retry_restart(fleet_director):
    d = fleet_director
    cars = fleet(d, 10)
    st = admin_ok(d, "rollout.create", {
        "id": "r-1.2.0", "target": "releases/acme/1.2.0.json", "hardware_ids": ["hw-main"],
        "phases": [2, "100%"], "success_threshold": 100, "failure_threshold": 20,
        "min_reports": 2})
    assert st["state"] == "running" and st["phases"][0]["devices"] == 2
    corr = st["correlation_id"]

    # Phase 1 is the first two devices by id; the others' targets stay empty.
    assert cars[2].poll() is None
    path, c, entry = cars[0].poll()
    assert (path, c) == ("releases/acme/1.2.0.json", corr)
    assert entry["custom"]["otter"]["version"] == "1.2.0"

    # One success, one failure: 1 of 2 reports failed (50% > 20%), min 2 reports: paused.
    assert cars[0].report(True) == corr
    cars[1].report(False, "E_HASH", "rootfs: sha256 differs")
    st = cli_json(d, "rollout", "status", "r-1.2.0")
    assert st["state"] == "paused", st
    assert "failure rate 1/2" in st["state_reason"]
    assert st["phases"][0]["installed"] == 1 and st["phases"][0]["failed"] == 1
    assert st["phases"][0]["failure_reasons"] == [
        {"reason": "E_HASH: rootfs: sha256 differs", "count": 1}]
    assert cars[2].poll() is None

    # Retry the failed device and resume; the server restarts in between and loses nothing.
    st = admin_ok(d, "rollout.retry-failed", {"id": "r-1.2.0"})
    assert st["retried_now"] == 1
    d.stop()
    d.start()
    st = cli_json(d, "rollout", "resume", "r-1.2.0")
    assert st["state"] == "running" and st["phase"] == 1
    cars[1].report(True)

    # Phase 2 (100%): every other device gets the release.
    st = admin_ok(d, "rollout.status", {"id": "r-1.2.0"})
    assert st["phase"] == 2 and st["phases"][1]["devices"] == 8
    for car in cars[2:6]:
        car.report(True)
    d.stop()
    d.start()
    for car in cars[6:]:
        car.report(True)
    st = admin_ok(d, "rollout.status", {"id": "r-1.2.0"})
    assert st["state"] == "completed"
    assert st["totals"]["installed"] == 10 and st["totals"]["failed"] == 0

    # The fleet view shows what each device runs now.
    fl = admin_ok(d, "fleet", {"limit": 3, "offset": 0})
    assert fl["total"] == 10 and [x["id"] for x in fl["devices"]] == ["car-00", "car-01",
                                                                      "car-02"]
    ecu = fl["devices"][0]["ecus"][0]
    assert ecu["installed"]["path"] == "releases/acme/1.2.0.json"
    assert ecu["assignment"]["status"] == "installed"
    assert ecu["assignment"]["rollout"] == "r-1.2.0"


def test_cancel_withdraws_and_late_joiner(fleet_director):
    d = fleet_director
    cars = fleet(d, 4)
    admin_ok(d, "rollout.create", {"id": "r2", "target": "releases/acme/1.3.0.json",
                                   "hardware_ids": ["hw-main"], "phases": ["100%"]})
    # A device registered during the 100% phase joins at once.
    late = SimDevice(d, "late-1", d.token())
    assert late.poll()[0] == "releases/acme/1.3.0.json"
    cars[0].poll()  # fetched: downloading, stays after cancel
    st = admin_ok(d, "rollout.cancel", {"id": "r2"})
    assert st["state"] == "cancelled" and st["withdrawn_now"] == 3
    assert cars[1].poll() is None
    assert cars[0].poll()[0] == "releases/acme/1.3.0.json"
    status, doc = admin(d, "rollout.resume", {"id": "r2"})
    assert status == 409 and doc["error"] == "conflict"


def test_unsigned_target_and_bad_requests_refused(fleet_director):
    d = fleet_director
    fleet(d, 1)
    status, doc = admin(d, "assign", {"target": "releases/acme/6.6.6.json",
                                      "devices": ["car-00"]})
    assert status == 404 and "not signed by the image repository" in doc["message"]
    status, doc = admin(d, "rollout.create", {"id": "x", "target": "releases/acme/1.2.0.json",
                                              "devices": ["car-00"], "phase": [1]})
    assert status == 400 and "unknown member" in doc["message"]
    _, err, rc = d.cli("assign", "--target", "releases/acme/6.6.6.json", "--device", "car-00")
    assert rc == 1 and "not signed" in err
    assert int(d.sql("SELECT COUNT(*) FROM assignments")[0][0]) == 0
    # A direct assignment through the CLI reaches the device.
    out = cli_json(d, "assign", "--target", "releases/acme/1.2.0.json", "--device", "car-00")
    assert out["devices"] == 1 and out["correlation_id"].startswith("assign-")


def test_two_servers_one_database_advance_once(fleet_director):
    """Two otter-director processes on one database; the devices of each phase report at
    once, half to each server: every phase starts once and every device is assigned once."""
    d = fleet_director
    other = SecondServer(d)
    try:
        tok = d.token("--uses", "20")
        cars = [SimDevice(d, f"car-{i:02d}", tok, base=other.url if i % 2 else None)
                for i in range(12)]
        admin_ok(d, "rollout.create", {
            "id": "r-two", "target": "releases/acme/1.2.0.json", "hardware_ids": ["hw-main"],
            "phases": [4, 8, "100%"], "success_threshold": 100})
        with ThreadPoolExecutor(max_workers=8) as pool:
            for phase, members in ((1, cars[:4]), (2, cars[4:8]), (3, cars[8:])):
                st = admin_ok(d, "rollout.status", {"id": "r-two"})
                assert st["phase"] == phase, st
                list(pool.map(lambda c: c.report(True), members))
        st = admin_ok(d, "rollout.status", {"id": "r-two"})
        assert st["state"] == "completed"
        assert [p["devices"] for p in st["phases"]] == [4, 4, 4]
        assert all(p["started"] is not None for p in st["phases"])
        gens = d.sql("SELECT assign_gen, COUNT(*) FROM devices GROUP BY assign_gen")
        assert gens == [("1", "12")], gens
    finally:
        other.stop()
