# SPDX-License-Identifier: LGPL-2.1-or-later
"""The device speaks Uptane (issue 11), against a real otter-director on SQLite and an image
repository made with otter-repo behind nginx: registration, full verification, installs
through the A/B path, manifests with install results; each attack a named test."""

import pytest

from conftest import needs_faketime
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


# ---- helpers ----

META = "/director/v1/metadata/"


def image_entry(env, path):
    """The image repository's signed entry for path (its newest targets metadata)."""
    import glob
    import json
    import os
    files = glob.glob(os.path.join(env.repo.metadata, "*.targets.json"))
    newest = max(files, key=lambda f: int(os.path.basename(f).split(".")[0]))
    with open(newest) as f:
        return json.load(f)["signed"]["targets"][path]


def forge_assignment(env, path, length, hashes, custom, corr="forged-1"):
    """What a compromised Director (its online keys, or its database) can do: assign any
    entry it likes to this device's ECU; the director signs it at the next poll."""
    import json
    import time
    now = int(time.time())
    env.sql("DELETE FROM assignments WHERE ecu_serial = '" + env.serial + "'")
    env.sql("INSERT INTO assignments (ecu_serial, device_id, rollout_id, phase, correlation_id, "
            "target_path, target_length, target_hashes, target_custom, status, created, "
            f"updated) VALUES ('{env.serial}', '{env.device_id}', NULL, NULL, '{corr}', "
            f"'{path}', {length}, '{json.dumps(hashes)}', '{json.dumps(custom)}', 'assigned', "
            f"{now}, {now})")
    env.sql(f"UPDATE devices SET assign_gen = assign_gen + 1 WHERE id = '{env.device_id}'")


def refused(env, *words):
    """A cycle that must fail, install nothing and touch no slot."""
    _, err, rc = env.update()
    assert rc != 0, "the update was not refused"
    assert not env.reboot_requested()
    st = env.status()
    assert st["primary"] == "A" and st["agent"]["state"] == "failed"
    for w in words:
        assert w in st["agent"]["last-error"], st["agent"]["last-error"]
    return st


# ---- install results ----

def test_failed_health_check_is_reported_with_its_correlation_id(env):
    env.release("1.1")
    env.update(check=True)                          # registers
    corr = env.assign("1.1")["correlation_id"]
    env.update(check=True)
    assert env.reboot() == "B"
    env.set_healthy(False)
    env.update()
    assert env.agent()["state"] == "rolled-back"
    status, reason, c = env.assignment()
    assert status == "failed" and reason.startswith("HEALTH_CHECK") and c == corr
    assert env.uptane_status()["install-result"] == "HEALTH_CHECK"


def test_status_shows_the_generated_device_key(env):
    import os
    import stat
    env.update(check=True)
    st = env.uptane_status()
    key = os.path.join(env.dev.data, "uptane", "ecu-key.pem")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert len(st["key-id"]) == 64 and len(st["public-key"]) == 64
    assert env.ecu_row()[2] == st["key-id"]
    out, _, _ = env.otter("status", check=True)
    assert st["key-id"] in out


# ---- a compromised Director ----

def test_compromised_director_cannot_install_an_image_the_image_repository_does_not_sign(env):
    import hashlib
    env.update(check=True)
    evil = b"attacker's firmware"
    forge_assignment(env, "releases/test-device/6.6.json", len(evil),
                     {"sha256": hashlib.sha256(evil).hexdigest()},
                     {"otter": {"compatible": "test-device", "version": "6.6"}})
    refused(env, "the image repository does not sign it")
    env.update()   # reported: the assignment failed verification, the attack is named
    status, reason, _ = env.assignment()
    assert status == "failed" and reason.startswith("VERIFICATION"), reason
    assert "not signed by the image repository" in env.uptane_status()["attacks-detected"]


def test_compromised_director_cannot_install_an_image_for_other_hardware(env):
    env.release("1.1", hardware=("other-hw",))
    env.update(check=True)
    e = image_entry(env, "releases/test-device/1.1.json")
    forge_assignment(env, "releases/test-device/1.1.json", e["length"], e["hashes"], e["custom"])
    refused(env, "for other devices")
    assert env.assignment()[0] == "failed"


def test_compromised_director_cannot_change_an_images_hashes(env):
    env.release("1.1")
    env.update(check=True)
    e = image_entry(env, "releases/test-device/1.1.json")
    forge_assignment(env, "releases/test-device/1.1.json", e["length"] + 1, e["hashes"],
                     e["custom"])
    refused(env, "differ from the image repository")
    assert "disagree" in env.uptane_status()["attacks-detected"]


def test_compromised_director_cannot_downgrade(env):
    env.release("0.9")
    env.update(check=True)
    e = image_entry(env, "releases/test-device/0.9.json")
    forge_assignment(env, "releases/test-device/0.9.json", e["length"], e["hashes"], e["custom"])
    refused(env, "older than the installed 1.0")


# ---- a compromised image repository ----

def test_compromised_image_repository_alone_installs_nothing(env):
    """The image repository's online keys sign new releases; the Director assigned none."""
    env.release("1.1")
    env.release("2.0")
    env.update(check=True)
    out, _, _ = env.update("--check", check=True)
    assert "up to date" in out
    assert not env.reboot_requested()
    assert env.status()["primary"] == "A"
    assert env.agent()["state"] != "failed"


# ---- Director metadata attacks ----

@pytest.fixture
def proxied(tmp_path, nginx, ceremony):
    """The device talks to the director through an attacker's proxy."""
    from uptanefixture import DirectorProxy
    e = UptaneEnv(tmp_path, nginx, ceremony)
    e.proxy = DirectorProxy(e.director.url)
    e.uptane_conf(director_url=e.proxy.url)
    yield e
    e.proxy.stop()
    e.stop()


def test_director_timestamp_rolled_back_is_refused(proxied):
    env = proxied
    env.release("1.1")
    env.update(check=True)
    old = env.proxy.seen[META + "timestamp.json"]
    env.assign("1.1")
    env.update("--check", check=True)     # the device now trusts the newer timestamp
    env.proxy.override[META + "timestamp.json"] = old
    refused(env, "director", "timestamp.json: version 1 is lower than trusted version",
            "rollback")
    assert env.agent()["last-error"]
    assert env.uptane_status()["attacks-detected"]


def test_director_snapshot_replayed_under_a_new_version_is_refused(proxied):
    env = proxied
    env.release("1.1")
    env.update(check=True)
    old = {p: b for p, b in env.proxy.seen.items() if p.endswith(".snapshot.json")}
    env.assign("1.1")
    env.update("--check", check=True)
    new = [p for p in env.proxy.seen if p.endswith(".snapshot.json") and p not in old]
    assert new
    # The next snapshot version, answered with the old snapshot's bytes.
    nxt = int(new[0].rsplit("/", 1)[1].split(".")[0]) + 1
    env.assign("1.1")  # a new assignment: a new timestamp names snapshot nxt
    env.proxy.override[f"{META}{nxt}.snapshot.json"] = list(old.values())[0]
    refused(env, "director", f"{nxt}.snapshot.json: sha256 is", "expected")
    assert env.status()["primary"] == "A"


def test_another_devices_director_targets_are_refused(proxied):
    import client
    env = proxied
    env.release("1.1")
    other = client.Device(env.director.url, "dev-other")
    assert other.register(env.director.token()).status == 201
    other.get_json("timestamp.json")
    other.get_json("1.snapshot.json")
    theirs = other.get("1.targets.json").body
    assert b'"dev-other"' in theirs
    env.proxy.override[META + "1.targets.json"] = theirs
    refused(env, "for device 'dev-other'")
    assert "another device" in env.uptane_status()["attacks-detected"]


@needs_faketime
def test_frozen_director_metadata_is_refused(proxied):
    import shutil
    if not shutil.which("faketime"):
        pytest.skip("faketime not installed")
    env = proxied
    env.release("1.1")
    env.update(check=True)
    # The attacker keeps answering with what the device saw then; two days later the
    # director's timestamp (1 day) has expired.
    for p, b in list(env.proxy.seen.items()):
        env.proxy.override[p] = b
    env.proxy.override[META + "2.root.json"] = 404
    _, err, rc = env.dev.otter("update", wrap=["faketime", "-f", "+2d"])
    assert rc != 0 and "expired" in err, err
    assert env.status()["primary"] == "A"


# ---- an unreachable Director ----

def test_unreachable_director_daemon_keeps_running_and_backs_off(env):
    import signal
    import subprocess
    import time
    env.uptane_conf(director_url="http://127.0.0.1:9")
    p = subprocess.Popen([env.dev.otter_exe, "--config", env.dev.conf, "daemon"],
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if env.agent().get("consecutive-failures", 0) >= 2:
                break
            time.sleep(0.2)
        assert env.agent()["consecutive-failures"] >= 2
        assert p.poll() is None, "the daemon stopped"
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=20)
    print(err)
    assert p.returncode == 0
    assert "is the director running and reachable?" in err
    st = env.uptane_status()
    assert "attacks-detected" not in st and st["registered"] is False
    assert env.status()["primary"] == "A"


def test_damaged_state_stops_the_director_client_not_the_agent(env):
    """A damaged uptane.json could let the counter go back: the Director part fails, named,
    until someone repairs it; after-boot work (confirmation) still runs."""
    import os
    env.update(check=True)
    with open(os.path.join(env.dev.data, "uptane.json"), "w") as f:
        f.write('{"report-counter": "x"')
    _, err, rc = env.update()
    assert rc != 0 and "cannot be recovered" in err, err
    assert int(env.ecu_row()[0]) == 1      # nothing sent with a guessed counter
    assert env.status()["booted"] == "A"


def test_director_target_for_an_unknown_ecu_is_refused_and_reported(env):
    """A compromised Director names an ECU this device does not have (here: one added to the
    device in the director's database, with an assignment)."""
    import hashlib
    env.release("1.1")
    env.update(check=True)
    e = image_entry(env, "releases/test-device/1.1.json")
    env.sql("INSERT INTO ecus (serial, device_id, hardware_id, is_primary, key_type, "
            f"public_key, keyid) VALUES ('stranger-ecu', '{env.device_id}', 'gw-v1', 0, "
            f"'ed25519', 'x', '{hashlib.sha256(b'stranger').hexdigest()}')")
    forge_assignment(env, "releases/test-device/1.1.json", e["length"], e["hashes"], e["custom"])
    env.sql("UPDATE assignments SET ecu_serial = 'stranger-ecu'")
    refused(env, "ECU 'stranger-ecu', which is not one of this device's ECUs")
    assert "unknown ECU stranger-ecu" in env.uptane_status()["attacks-detected"]


def test_registration_with_a_bad_token_fails_and_says_why(tmp_path, nginx, ceremony):
    e = UptaneEnv(tmp_path, nginx, ceremony, token=False)
    try:
        with open(e.token_file, "w") as f:
            f.write("otk1.nope.nope\n")
        _, err, rc = e.update()
        assert rc != 0 and "registering device dev-1" in err and "HTTP 403" in err, err
        assert e.uptane_status()["registered"] is False
        # A good token later: registered at the next cycle.
        with open(e.token_file, "w") as f:
            f.write(e.director.token() + "\n")
        e.update(check=True)
        assert e.uptane_status()["registered"] is True
    finally:
        e.stop()


# ---- secondary ECUs ----

def with_secondary(env, install=None):
    """A gateway with a simulated MCU: its install handler stores what it gets on stdin."""
    import os
    env.mcu_file = os.path.join(env.base, "mcu.bin")
    env.mcu_serial = env.device_id + "-mcu"
    env.uptane_conf(extra=f"""
[secondary.mcu]
serial={env.mcu_serial}
hardware-id=mcu-v1
install={install or f"cat > {env.mcu_file}"}
""")
    return env


def mcu_image(env, version):
    import os
    data = os.urandom(64 * 1024)
    path = os.path.join(env.tmp, f"mcu-{version}.bin")
    with open(path, "wb") as f:
        f.write(data)
    env.repo("add-target", path, "--path", f"fw/mcu-{version}.bin")
    env.repo("publish", "--key", os.path.join(env.keys, "targets-1.pem"))
    return data


def mcu_assignment(env):
    return env.sql("SELECT status, reason, correlation_id FROM assignments WHERE ecu_serial = "
                   f"'{env.mcu_serial}'")[0]


def test_secondary_is_registered_installed_through_its_handler_and_reported(env):
    import os
    with_secondary(env)
    env.update(check=True)
    rows = env.sql(f"SELECT serial, hardware_id, is_primary FROM ecus WHERE device_id = "
                   f"'{env.device_id}' ORDER BY serial")
    assert [(r[0], r[1]) for r in rows] == [(env.serial, "gw-v1"), (env.mcu_serial, "mcu-v1")]
    data = mcu_image(env, "2.0")
    _, err, rc = env.director.cli("assign", "--target", "fw/mcu-2.0.bin", "--device",
                                  env.device_id, "--hardware-id", "mcu-v1")
    assert rc == 0, err
    env.update(check=True)
    with open(env.mcu_file, "rb") as f:
        assert f.read() == data
    assert not env.reboot_requested()           # the primary's slots are not touched
    assert mcu_assignment(env)[0] == "installed"
    path = env.sql(f"SELECT installed_path FROM ecus WHERE serial = '{env.mcu_serial}'")[0][0]
    assert path == "fw/mcu-2.0.bin"
    sec = env.uptane_status()["secondaries"][0]
    assert sec["installed"] == "fw/mcu-2.0.bin" and sec["install-result"] == "success"
    # Installed once: the next cycle does not run the handler again.
    os.unlink(env.mcu_file)
    env.update(check=True)
    assert not os.path.exists(env.mcu_file)


def test_secondary_install_handler_failure_is_reported(env):
    with_secondary(env, install="cat > /dev/null; exit 3")
    env.update(check=True)
    mcu_image(env, "2.0")
    env.director.cli("assign", "--target", "fw/mcu-2.0.bin", "--device", env.device_id,
                     "--hardware-id", "mcu-v1", check=True)
    env.update(check=True)
    status, reason, _ = mcu_assignment(env)
    assert status == "failed" and reason.startswith("INSTALL") and "exit status 3" in reason


def test_compromised_director_cannot_send_a_secondary_an_unsigned_image(env):
    import hashlib
    import json
    import os
    import time
    with_secondary(env)
    env.update(check=True)
    env.release("1.1")
    e = image_entry(env, "releases/test-device/1.1.json")
    evil = b"attacker's MCU firmware"
    now = int(time.time())
    # One assignment (one correlation id) for both ECUs: the primary's part is genuine, the
    # MCU's is not signed by the image repository. Nothing of it may be installed.
    forge_assignment(env, "releases/test-device/1.1.json", e["length"], e["hashes"],
                     e["custom"], corr="both")
    env.sql("INSERT INTO assignments (ecu_serial, device_id, rollout_id, phase, correlation_id, "
            "target_path, target_length, target_hashes, target_custom, status, created, "
            f"updated) VALUES ('{env.mcu_serial}', '{env.device_id}', NULL, NULL, 'both', "
            f"'fw/evil.bin', {len(evil)}, "
            f"'{json.dumps({'sha256': hashlib.sha256(evil).hexdigest()})}', '{{}}', "
            f"'assigned', {now}, {now})")
    env.sql(f"UPDATE devices SET assign_gen = assign_gen + 1 WHERE id = '{env.device_id}'")
    refused(env, "the image repository does not sign it")
    assert not os.path.exists(env.mcu_file)
    assert "not signed by the image repository" in env.uptane_status()["attacks-detected"]


def test_one_assignment_for_primary_and_secondary_is_installed_and_reported_per_ecu(env):
    import json
    import time
    with_secondary(env)
    env.update(check=True)
    env.release("1.1")
    data = mcu_image(env, "2.0")
    e = image_entry(env, "releases/test-device/1.1.json")
    m = image_entry(env, "fw/mcu-2.0.bin")
    forge_assignment(env, "releases/test-device/1.1.json", e["length"], e["hashes"],
                     e["custom"], corr="both")
    now = int(time.time())
    env.sql("INSERT INTO assignments (ecu_serial, device_id, rollout_id, phase, correlation_id, "
            "target_path, target_length, target_hashes, target_custom, status, created, "
            f"updated) VALUES ('{env.mcu_serial}', '{env.device_id}', NULL, NULL, 'both', "
            f"'fw/mcu-2.0.bin', {m['length']}, '{json.dumps(m['hashes'])}', '{{}}', "
            f"'assigned', {now}, {now})")
    env.sql(f"UPDATE devices SET assign_gen = assign_gen + 1 WHERE id = '{env.device_id}'")
    env.update(check=True)
    with open(env.mcu_file, "rb") as f:
        assert f.read() == data
    assert env.reboot_requested() and env.reboot() == "B"
    env.update(check=True)
    assert env.agent()["state"] == "confirmed"
    assert env.assignment()[0] == "installed" and mcu_assignment(env)[0] == "installed"
    body = json.loads(env.sql(f"SELECT body FROM manifests WHERE device_id = "
                              f"'{env.device_id}' ORDER BY seq DESC LIMIT 1")[0][0])
    report = body["signed"]["installation_report"]
    assert report["correlation_id"] == "both" and report["result"]["success"] is True
    assert sorted(i["ecu"] for i in report["items"]) == sorted([env.serial, env.mcu_serial])
