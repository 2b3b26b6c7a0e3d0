# SPDX-License-Identifier: LGPL-2.1-or-later
"""Moving a director from SQLite to PostgreSQL with `otter-director export` and `import`:
devices keep their keys, assignments, metadata versions and report counters, so they notice
nothing; a dump that is truncated, altered or of another schema version imports nothing."""

import json

import pytest

from conftest import Director
from test_director_device import assign, count, registered

TABLES = ["devices", "device_tags", "ecus", "provisioning_tokens", "director_roots",
          "device_metadata", "manifests", "rollouts", "rollout_phases", "rollout_devices",
          "assignments"]


def counts(director):
    return {t: count(director, t) for t in TABLES}


def fresh_pg_director(tmp_path, ceremony, pg):
    """A director configured for a new, empty PostgreSQL database (no root imported yet:
    import brings the root with everything else)."""
    d = Director(tmp_path, ceremony, "postgresql", pg)
    pg_db = f"{d.db_name}_empty"
    url = pg.new_database(pg_db)
    d.conf.write_text(d.conf.read_text().replace(d.db_url, url))
    d.db_url, d.db_name = url, pg_db
    return d


@pytest.fixture
def sqlite_fleet(tmp_path, ceremony):
    """A director on SQLite with two devices that registered, fetched their metadata, got an
    assignment and reported, and a provisioning token not used yet."""
    (tmp_path / "a").mkdir()
    a = Director(tmp_path / "a", ceremony, "sqlite", None).start()
    devs = [registered(a, "move-1", secondaries=1), registered(a, "move-2")]
    a.token("--tag", "late")
    assign(a, devs[0], devs[0].primary, corr="c-move")
    for d in devs:
        d.fetch_repository(str(tmp_path / "a" / ("r-" + d.device_id)))
        assert d.put_manifest(d.manifest()).status == 204
    yield a, devs
    a.stop()


def test_sqlite_to_postgresql_devices_notice_nothing(sqlite_fleet, tmp_path, ceremony,
                                                     pg_server):
    a, devs = sqlite_fleet
    before = {d.device_id: d.get("timestamp.json").body for d in devs}
    dump = tmp_path / "director.dump"
    a.cli("export", dump, check=True)  # while serving: one read transaction
    a.stop()
    lines = dump.read_text().splitlines()
    assert json.loads(lines[0])["engine"] == "sqlite"
    assert json.loads(lines[-1])["end"] is True

    (tmp_path / "b").mkdir()
    b = fresh_pg_director(tmp_path / "b", ceremony, pg_server)
    _, err, rc = b.cli("import", dump)
    assert rc == 0, err
    assert counts(b) == counts(a)
    b.start()
    try:
        for d in devs:
            d.base = b.url
            # The same signed bytes: versions continue, nothing was re-signed.
            assert d.get("timestamp.json").body == before[d.device_id]
        d0 = devs[0]
        tg = d0.fetch_repository(str(tmp_path / "b" / "r"))
        assert "fw/app-2.0.bin" in tg["signed"]["targets"]
        # Report counters moved too: the last manifest replayed is refused, a new one taken.
        d0.primary.counter -= 1
        d0.ecus[1].counter -= 1
        r = d0.put_manifest(d0.manifest())
        assert r.status == 409 and r.json()["error"] == "replayed"
        assert d0.put_manifest(d0.manifest()).status == 204
        # A new assignment makes the next version, after the moved ones.
        v = d0.get_json("timestamp.json")["signed"]["version"]
        assign(b, d0, d0.ecus[1], path="fw/aux-2.0.bin", corr="c-after")
        assert d0.get_json("timestamp.json")["signed"]["version"] == v + 1
    finally:
        b.stop()


def test_import_refuses_a_database_in_use(sqlite_fleet, tmp_path, ceremony, pg_server):
    a, _ = sqlite_fleet
    dump = tmp_path / "director.dump"
    a.cli("export", dump, check=True)
    (tmp_path / "b").mkdir()
    b = Director(tmp_path / "b", ceremony, "postgresql", pg_server)  # has its root already
    _, err, rc = b.cli("import", dump)
    assert rc == 1 and "not empty" in err
    assert count(b, "devices") == 0 and count(b, "director_roots") == 1


@pytest.mark.parametrize("damage", ["truncated", "altered", "schema"])
def test_damaged_dump_imports_nothing(sqlite_fleet, tmp_path, ceremony, pg_server, damage):
    a, _ = sqlite_fleet
    dump = tmp_path / "director.dump"
    a.cli("export", dump, check=True)
    lines = dump.read_text().splitlines()
    if damage == "truncated":
        lines = lines[:-3]
    elif damage == "altered":
        # A row with a value that is neither a string nor null, late in the dump.
        i = max(k for k, line in enumerate(lines) if line.startswith("["))
        row = json.loads(lines[i])
        row[0] = 7
        lines[i] = json.dumps(row)
    else:
        head = json.loads(lines[0])
        head["schema_version"] += 1
        lines[0] = json.dumps(head)
    dump.write_text("\n".join(lines) + "\n")
    (tmp_path / "b").mkdir()
    b = fresh_pg_director(tmp_path / "b", ceremony, pg_server)
    _, err, rc = b.cli("import", dump)
    assert rc == 1, err
    assert {"truncated": "truncated", "altered": "neither a string nor null",
            "schema": "schema version"}[damage] in err
    assert sum(counts(b).values()) == 0
