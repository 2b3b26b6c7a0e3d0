# SPDX-License-Identifier: LGPL-2.1-or-later
"""otter-director's device API against the real server, on SQLite and PostgreSQL: registration
(tokens, pre-registration), request authentication, the per-device metadata, manifests and
their replay protection, cross-device isolation, bad input, restarts."""

import hashlib
import json
import time

from client import Device, Key, envelope, request
from conftest import ADMIN_TOKEN

P = "/director/v1/"


def registered(director, name, **kw):
    dev = director.device(name, **kw)
    tok = director.token()
    r = dev.register(tok)
    assert r.status == 201, r.body
    return dev


def count(director, table, where=""):
    return int(director.sql(f"SELECT COUNT(*) FROM {table} {where}")[0][0])


def assign(director, dev, ecu, path="fw/app-2.0.bin", corr="corr-1", data=b"new image",
           status="assigned"):
    """An assignments row as the rollout side writes it, and the generation bump."""
    hashes = json.dumps({"sha256": hashlib.sha256(data).hexdigest()})
    custom = json.dumps({"otter": {"version": "2.0"}})
    now = int(time.time())
    director.sql(
        "INSERT INTO assignments (ecu_serial, device_id, rollout_id, phase, correlation_id, "
        "target_path, target_length, target_hashes, target_custom, status, created, updated) "
        f"VALUES ('{ecu.serial}', '{dev.device_id}', NULL, NULL, '{corr}', '{path}', "
        f"{len(data)}, '{hashes}', '{custom}', '{status}', {now}, {now})")
    director.sql(f"UPDATE devices SET assign_gen = assign_gen + 1 WHERE id = '{dev.device_id}'")


def status_of(director, ecu):
    return director.sql(f"SELECT status, reason FROM assignments WHERE ecu_serial = "
                        f"'{ecu.serial}'")[0]


# ---- registration ----

def test_token_registers_one_device_only(director):
    tok = director.token()
    a, b = director.device("dev-a"), director.device("dev-b")
    r = a.register(tok)
    assert r.status == 201 and r.json() == {"device_id": "dev-a", "status": "registered"}
    r = b.register(tok)
    assert r.status == 403 and r.json()["error"] == "token_rejected"
    assert count(director, "devices", "WHERE id = 'dev-b'") == 0
    # Sending the same registration again is harmless.
    assert a.register(tok).status == 200


def test_token_with_several_uses_and_tags(director):
    tok = director.token("--uses", "2", "--tag", "lab", "--tag", "eu")
    for name in ("dev-1", "dev-2"):
        assert director.device(name).register(tok).status == 201
    assert director.device("dev-3").register(tok).status == 403
    tags = director.sql("SELECT tag FROM device_tags WHERE device_id = 'dev-2' ORDER BY tag")
    assert [t[0] for t in tags] == ["eu", "lab"]


def test_expired_token_refused(director):
    tok = director.token("--expires", "1")
    time.sleep(1.2)
    r = director.device("dev-late").register(tok)
    assert r.status == 403 and "expired" in r.json()["message"]
    assert count(director, "devices") == 0


def test_revoked_and_forged_tokens_refused(director):
    tok = director.token()
    out, _, _ = director.cli("token", "list", check=True)
    tid = json.loads(out)["tokens"][0]["id"]
    forged = tok[:-4] + ("0000" if not tok.endswith("0000") else "1111")
    assert director.device("dev-f").register(forged).status == 403
    director.cli("token", "revoke", tid, check=True)
    assert director.device("dev-r").register(tok).status == 403
    assert count(director, "devices") == 0


def test_token_bound_to_device_id(director):
    tok = director.token("--device", "dev-bound")
    assert director.device("dev-other").register(tok).status == 403
    d = director.device("dev-bound")
    r = d.register(tok, device_id=False)
    assert r.status == 201 and r.json()["device_id"] == "dev-bound"


def test_unknown_device_needs_token(director):
    r = director.device("dev-x").register()
    assert r.status == 401 and r.json()["error"] == "token_required"


def test_registration_needs_proof_of_possession(director):
    """Registering someone else's public key fails: the request must be signed by it."""
    d = director.device("dev-pop")
    body = json.dumps(d.registration(director.token())).encode()
    r = request(director.url, "POST", P + "register", body, Key())
    assert r.status == 401
    assert count(director, "devices") == 0


def test_registration_needs_exactly_one_primary(director):
    d = director.device("dev-2p", secondaries=1)
    d.ecus[1].primary = True
    r = d.register(director.token())
    assert r.status == 400 and "primary" in r.json()["message"]


def test_preregistered_device_needs_no_token(director, tmp_path):
    d = director.device("dev-pre", secondaries=1, kind="ecdsa")
    p, s = d.ecus
    director.cli("device", "add", "--id", "dev-pre", "--tag", "line-3",
                 "--ecu", f"serial={p.serial},hardware-id={p.hardware_id},"
                 f"key={p.key.write_public(tmp_path / 'p.pem')},primary",
                 "--ecu", f"serial={s.serial},hardware-id={s.hardware_id},"
                 f"key={s.key.write_public(tmp_path / 's.pem')}", check=True)
    # It polls straight away, and a registration naming the same ECUs is accepted.
    assert d.get("timestamp.json").status == 200
    r = d.register()
    assert r.status == 200 and r.json()["status"] == "already registered"
    out, _, _ = director.cli("device", "show", "dev-pre", check=True)
    shown = json.loads(out)
    assert shown["tags"] == ["line-3"] and len(shown["ecus"]) == 2
    # Another key cannot take its ECUs.
    other = director.device("dev-pre", secondaries=1)
    assert other.register(director.token()).status == 409


# ---- authentication ----

def test_unregistered_key_gets_401_and_nothing_else(director):
    registered(director, "dev-known")
    stranger = Device(director.url, "dev-known")  # same id, other keys
    for name in ("timestamp.json", "1.root.json", "1.targets.json", "1.snapshot.json"):
        r = stranger.get(name)
        assert r.status == 401, name
        assert r.json()["error"] == "unauthorized"
        assert b"signed" not in r.body
    r = stranger.put_manifest(stranger.manifest())
    assert r.status == 401
    assert count(director, "manifests") == 0


def test_unsigned_and_stale_requests_refused(director):
    d = registered(director, "dev-auth")
    r = request(director.url, "GET", P + "metadata/timestamp.json")
    assert r.status == 401
    r = request(director.url, "GET", P + "metadata/timestamp.json", key=d.primary.key,
                t=int(time.time()) - 1000)
    assert r.status == 401 and "clock" in r.json()["message"]
    # A signature over another path does not authorize this one.
    hdr = {"Otter-Signature": __import__("client").signature_header(
        d.primary.key, "GET", P + "metadata/1.root.json", b"")}
    r = request(director.url, "GET", P + "metadata/timestamp.json", headers=hdr)
    assert r.status == 401


# ---- metadata ----

def test_empty_targets_name_the_device(director):
    d = registered(director, "dev-empty")
    tg = d.fetch_repository(str(director.tmp / "repo"))
    assert tg["signed"]["targets"] == {}
    assert tg["signed"]["custom"]["device_id"] == "dev-empty"
    assert tg["signed"]["_type"] == "targets"


def test_nothing_changed_poll_keeps_versions(director):
    d = registered(director, "dev-poll")
    first = d.get("timestamp.json")
    assert first.status == 200
    etag = first.headers["ETag"]
    for _ in range(3):
        again = d.get("timestamp.json")
        assert again.status == 200 and again.body == first.body
    r = d.get("timestamp.json", headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b""
    assert director.sql("SELECT timestamp_version, targets_version FROM device_metadata")[0] \
        == ("1", "1")


def test_assignment_yields_new_targets_naming_the_ecu(director):
    d = registered(director, "dev-asg", secondaries=1)
    before = d.fetch_repository(str(director.tmp / "r1"))
    ts1 = d.get_json("timestamp.json")["signed"]["version"]
    assign(director, d, d.ecus[1], corr="rollout-7")
    ts2 = d.get_json("timestamp.json")
    assert ts2["signed"]["version"] == ts1 + 1
    tg = d.fetch_repository(str(director.tmp / "r2"))
    assert tg["signed"]["version"] == before["signed"]["version"] + 1
    entry = tg["signed"]["targets"]["fw/app-2.0.bin"]
    assert entry["length"] == len(b"new image")
    assert entry["hashes"]["sha256"] == hashlib.sha256(b"new image").hexdigest()
    assert entry["custom"]["ecuIdentifiers"] == {d.ecus[1].serial: {"hardwareId": "hw-aux"}}
    assert entry["custom"]["correlationId"] == "rollout-7"
    assert entry["custom"]["otter"] == {"version": "2.0"}
    assert tg["signed"]["custom"]["device_id"] == "dev-asg"
    assert tg["signed"]["custom"]["correlationId"] == "rollout-7"
    # Fetching targets that name the assignment marks it downloading.
    assert status_of(director, d.ecus[1])[0] == "downloading"


def test_metadata_expiry_and_version_names(director):
    d = registered(director, "dev-exp")
    ts = d.get_json("timestamp.json")["signed"]
    now = time.time()
    exp = time.mktime(time.strptime(ts["expires"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert now + 86400 - 120 <= exp <= now + 86400 + 120
    snap = ts["meta"]["snapshot.json"]
    assert "hashes" in snap and "sha256" in snap["hashes"]
    assert d.get(f"{snap['version'] + 1}.snapshot.json").status == 404
    assert d.get("targets.json").status == 404
    assert d.get("../etc/passwd").status in (404,)


# ---- manifests ----

def test_manifest_accepted_and_installation_report_recorded(director):
    d = registered(director, "dev-man", secondaries=1)
    assign(director, d, d.primary, corr="c-ok")
    d.fetch_repository(str(director.tmp / "r"))
    d.primary.installed = {"filepath": "fw/app-2.0.bin",
                           "fileinfo": {"length": 9, "hashes": {
                               "sha256": hashlib.sha256(b"new image").hexdigest()}}}
    rep = {"correlation_id": "c-ok", "result": {"success": True, "code": "OK",
                                                  "description": ""}}
    r = d.put_manifest(d.manifest(report=rep))
    assert r.status == 204, r.body
    assert status_of(director, d.primary)[0] == "installed"
    row = director.sql(f"SELECT installed_path, report_counter FROM ecus WHERE serial = "
                       f"'{d.primary.serial}'")[0]
    assert row == ("fw/app-2.0.bin", "1")
    out, _, _ = director.cli("history", "dev-man", check=True)
    h = json.loads(out)["manifests"]
    assert len(h) == 1 and h[0]["correlation_id"] == "c-ok" and h[0]["success"] is True


def test_failed_installation_reason_recorded(director):
    d = registered(director, "dev-fail")
    assign(director, d, d.primary, corr="c-bad")
    rep = {"correlation_id": "c-bad", "result": {"success": False, "code": "HEALTH_CHECK",
                                                   "description": "service did not start"},
           "items": [{"ecu": d.primary.serial, "result": {
               "success": False, "code": "HEALTH_CHECK",
               "description": "service did not start"}}]}
    assert d.put_manifest(d.manifest(report=rep)).status == 204
    assert status_of(director, d.primary) == ("failed", "HEALTH_CHECK: service did not start")


def test_replayed_manifest_rejected(director):
    d = registered(director, "dev-replay")
    m = d.manifest()
    assert d.put_manifest(m).status == 204
    r = d.put_manifest(m)
    assert r.status == 409 and r.json()["error"] == "replayed"
    assert count(director, "manifests") == 1


def test_older_counter_rejected(director):
    d = registered(director, "dev-old", secondaries=1)
    assert d.put_manifest(d.manifest(counters={d.primary.serial: 5,
                                               d.ecus[1].serial: 5})).status == 204
    # Primary newer but the secondary's report is older: the whole manifest is refused.
    r = d.put_manifest(d.manifest(counters={d.primary.serial: 6, d.ecus[1].serial: 4}))
    assert r.status == 409
    assert count(director, "manifests") == 1
    assert director.sql(f"SELECT report_counter FROM ecus WHERE serial = "
                        f"'{d.primary.serial}'")[0][0] == "5"


def test_forged_manifest_rejected(director):
    d = registered(director, "dev-forge", secondaries=1)
    # Signed by a key that is not the primary's.
    r = d.put_manifest(d.manifest(sign_key=Key()))
    assert r.status == 400 and r.json()["error"] == "bad_signature"
    # A secondary's report signed by another key.
    forged = envelope({"ecu_serial": d.ecus[1].serial, "installed_image": d.ecus[1].installed,
                       "attacks_detected": "", "report_counter": 99}, Key())
    r = d.put_manifest(d.manifest(ecus=[d.primary],
                                  extra_reports={d.ecus[1].serial: forged}))
    assert r.status == 400
    # A valid envelope whose payload was changed afterwards.
    m = d.manifest()
    m["signed"]["ecu_version_manifests"][d.primary.serial]["signed"]["report_counter"] = 1000
    assert d.put_manifest(m).status == 400
    assert count(director, "manifests") == 0


def test_missing_and_foreign_ecus_rejected(director):
    a = registered(director, "dev-a", secondaries=1)
    b = registered(director, "dev-b")
    r = a.put_manifest(a.manifest(ecus=[a.primary]))
    assert r.status == 400 and "lacks" in r.json()["message"]
    # A's manifest carrying B's (genuinely signed) report.
    r = a.put_manifest(a.manifest(extra_reports={b.primary.serial: b.ecu_report(b.primary)}))
    assert r.status == 403
    assert count(director, "manifests") == 0


def test_cross_device_isolation(director):
    a = registered(director, "dev-a")
    b = registered(director, "dev-b")
    assign(director, b, b.primary, corr="only-b")
    # A naming B in its manifest (signed with A's own key).
    r = a.put_manifest(a.manifest(device_id="dev-b"))
    assert r.status == 403
    # A reporting on B's assignment: nothing changes for B.
    rep = {"correlation_id": "only-b", "result": {"success": False, "code": "X",
                                                    "description": ""}}
    assert a.put_manifest(a.manifest(report=rep)).status == 204
    assert status_of(director, b.primary)[0] == "assigned"
    # A only ever reads its own metadata, whatever version it asks for.
    ta = a.fetch_repository(str(director.tmp / "ra"))
    assert ta["signed"]["custom"]["device_id"] == "dev-a" and ta["signed"]["targets"] == {}
    tb = b.fetch_repository(str(director.tmp / "rb"))
    for v in range(1, tb["signed"]["version"] + 2):
        r = a.get(f"{v}.targets.json")
        assert r.status == 404 or json.loads(r.body)["signed"]["custom"]["device_id"] == "dev-a"
    assert count(director, "manifests", "WHERE device_id = 'dev-b'") == 0


# ---- bad input ----

def test_bad_input_gets_clear_4xx_and_server_keeps_serving(director):
    d = registered(director, "dev-bad")
    u = director.url
    cases = [
        (request(u, "PUT", P + "manifest", b"{not json", d.primary.key), 400),
        (request(u, "PUT", P + "manifest", b"[]", d.primary.key), 400),
        (request(u, "PUT", P + "manifest", b'{"signed": 1}', d.primary.key), 400),
        (request(u, "PUT", P + "manifest", b"x" * (300 * 1024), d.primary.key), 413),
        (request(u, "POST", P + "register", b"{" * 20000, d.primary.key), 413),
        (request(u, "PUT", P + "manifest", b"{}", d.primary.key,
                 content_type="text/plain"), 415),
        (request(u, "POST", P + "register", b"{}", content_type="application/xml"), 415),
        (request(u, "GET", P + "nothing-here", b"", d.primary.key), 404),
        (request(u, "GET", "/", b""), 404),
        (request(u, "GET", P + "manifest", b"", d.primary.key), 405),
        (request(u, "DELETE", P + "metadata/timestamp.json", b"", d.primary.key), 405),
        (request(u, "POST", P + "register", b'{"ecus": "x"}', d.primary.key), 400),
    ]
    for resp, want in cases:
        assert resp.status == want, (want, resp.status, resp.body)
        assert "error" in resp.json()
    assert count(director, "manifests") == 0
    assert count(director, "devices") == 1
    assert director.alive()
    assert d.get("timestamp.json").status == 200


def test_admin_api_needs_the_bearer_token(director):
    u = director.url
    r = request(u, "POST", P + "admin/fleet", b"{}")
    assert r.status == 401
    r = request(u, "POST", P + "admin/fleet", b"{}",
                headers={"Authorization": "Bearer wrong-token-0123456789"})
    assert r.status == 401
    r = request(u, "POST", P + "admin/fleet", b"{}",
                headers={"Authorization": "Bearer " + ADMIN_TOKEN})
    assert r.status != 401 and "error" in r.json() or r.status == 200


# ---- restart ----

def test_restart_loses_nothing_and_versions_continue(director):
    d = registered(director, "dev-restart")
    assert d.put_manifest(d.manifest()).status == 204
    v1 = d.get_json("timestamp.json")["signed"]["version"]
    t1 = d.fetch_repository(str(director.tmp / "a"))["signed"]["version"]
    director.stop()
    director.start()
    d.base = director.url
    assert d.get_json("timestamp.json")["signed"]["version"] == v1
    assign(director, d, d.primary)
    assert d.get_json("timestamp.json")["signed"]["version"] == v1 + 1
    assert d.fetch_repository(str(director.tmp / "b"))["signed"]["version"] == t1 + 1
    # The replay counter survived too.
    r = d.put_manifest(d.manifest(counters={d.primary.serial: 1}))
    assert r.status == 409
