"""Every attack of tuf.md §9, staged on a repository served by nginx (or, for the network
attacks, a hostile server on 127.0.0.1), against the real otter-tuf binary. Each test shows
the attack fails, and that the client's trusted metadata and targets stay as they were."""

import glob
import hashlib
import json
import os
import socket
import threading
import time

import pytest

from conftest import free_port, needs_faketime
from tufclient import setup  # noqa: F401 (fixture)
from tufrepo import Key


def snapshot_of(client):
    """The client's trusted state: every file and its bytes."""
    out = {}
    for d in (client.md, client.td):
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                out[(str(d), name)] = f.read()
    return out


def test_attack_arbitrary_installation_unsigned_metadata(setup):
    repo, client = setup()
    assert client.refresh() == 0
    before = snapshot_of(client)
    repo.signers["targets"] = [Key()]  # not a key root assigns to targets
    repo.add_target("evil.bin", b"evil")
    repo.update("targets")
    assert client.download("evil.bin") == 1
    assert client.version("targets") == 1
    assert "evil.bin" not in client.targets()
    after = snapshot_of(client)
    # timestamp and snapshot were validly signed and may advance; targets may not.
    assert after[(str(client.md), "targets.json")] == before[(str(client.md), "targets.json")]


def test_attack_arbitrary_installation_replaced_target(setup):
    repo, client = setup()
    repo.add_target("fw.bin", b"genuine firmware")
    repo.update("targets")
    # The server's bytes are swapped after signing.
    repo.write_target("fw.bin", b"attacker payload")
    assert client.download("fw.bin") == 1
    assert client.targets() == []


def test_attack_rollback_timestamp(setup):
    repo, client = setup()
    old = repo.published["timestamp.json"]
    repo.update("targets")
    assert client.refresh() == 0
    repo.write_metadata("timestamp.json", old)  # replay the older, validly signed file
    assert client.refresh() == 1
    assert client.version("timestamp") == 2


def test_attack_rollback_targets(setup):
    repo, client = setup()
    repo.update("targets")
    assert client.refresh() == 0
    repo.signed["snapshot"]["meta"]["targets.json"]["version"] = 1
    repo.publish(["snapshot", "timestamp"])
    assert client.refresh() == 1
    assert client.version("targets") == 2
    assert client.version("snapshot") == 2


def test_attack_rollback_root(setup):
    repo, client = setup()
    repo.write_metadata("2.root.json", repo.published["1.root.json"])
    assert client.refresh() == 1
    assert client.version("root") == 1


def test_attack_fast_forward_recovery(setup):
    repo, client = setup()
    # A stolen snapshot key published version 100 of snapshot (and timestamp pointing at it).
    repo.signed["snapshot"]["version"] = 99
    repo.publish(["snapshot", "timestamp"])
    assert client.refresh() == 0
    assert client.version("snapshot") == 100
    # Recovery: rotate the snapshot and timestamp keys, restart snapshot at version 1.
    snap, ts = Key(), Key()
    repo.rotate_root(add=[snap], remove=repo.signers["snapshot"], role="snapshot")
    repo.rotate_root(add=[ts], remove=repo.signers["timestamp"], role="timestamp")
    repo.signed["snapshot"]["version"] = 0
    repo.publish(["snapshot", "timestamp"])
    assert client.refresh() == 0
    assert client.version("root") == 3
    assert client.version("snapshot") == 1


@needs_faketime
def test_attack_indefinite_freeze(setup):
    repo, client = setup()
    assert client.refresh() == 0
    # The attacker keeps serving the same, validly signed files: once the timestamp
    # expires the client refuses to consider them current.
    libs = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    assert libs, "libfaketime missing: `make deps` installs Debian's faketime"
    env = {"FAKETIME": "+2d", "LD_PRELOAD": libs[0]}
    assert client.refresh(env=env) == 1
    assert client.refresh() == 0


def test_attack_freeze_expired_snapshot_from_server(setup):
    repo, client = setup()
    assert client.refresh() == 0
    repo.signed["snapshot"]["expires"] = "2001-01-01T00:00:00Z"
    repo.update("targets")
    assert client.refresh() == 1
    assert client.version("snapshot") == 1


def test_attack_endless_data(setup, nginx):
    repo, client = setup()
    # A timestamp.json of 50 MB: the client reads at most 16384 bytes of it.
    with open(os.path.join(repo.metadata_dir, "timestamp.json"), "wb") as f:
        f.write(b" " * (50 << 20))
    start = time.monotonic()
    assert client.refresh() == 1
    assert time.monotonic() - start < 20
    assert client.version("timestamp") is None
    # An artifact that is longer than signed is cut off and not stored.
    repo.publish_role("timestamp")
    repo.add_target("small.bin", b"x" * 10)
    repo.update("targets")
    repo.write_target("small.bin", b"x" * (10 << 20))
    assert client.download("small.bin") == 1
    assert client.targets() == []


class SlowServer:
    """Sends a valid HTTP header, then one byte per second: never finishes in time."""

    def __init__(self):
        self.port = free_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(8)
        self.stop = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.trickle, args=(c,), daemon=True).start()

    def trickle(self, c):
        try:
            c.recv(4096)
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 10000\r\n\r\n")
            for _ in range(60):
                if self.stop:
                    break
                c.sendall(b"{")
                time.sleep(1)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.sock.close()


def test_attack_slow_retrieval(setup):
    repo, client = setup()
    slow = SlowServer()
    try:
        client.metadata_url = f"http://127.0.0.1:{slow.port}/metadata/"
        start = time.monotonic()
        _, err, rc = __import__("conftest").run(
            [client.exe, "--metadata-dir", client.md, "--metadata-url", client.metadata_url,
             "--slow-timeout", "2", "--min-speed", "100", "refresh"])
        assert rc == 1
        assert time.monotonic() - start < 15
        assert "too slow" in err.lower() or "timeout" in err.lower() or "timed out" in err
        assert client.version("timestamp") is None
    finally:
        slow.close()


def test_attack_extraneous_dependencies(setup, nginx):
    repo, client = setup()
    repo.add_target("app.bin", b"app", custom={"depends": ["lib.so"]})
    repo.update("targets")
    # lib.so sits on the server but no signed metadata lists it.
    with open(os.path.join(repo.targets_dir, "lib.so"), "wb") as f:
        f.write(b"unsigned dependency")
    nginx.clear_log()
    assert client.download("lib.so") == 1
    assert not any("/targets/" in p for p, _ in nginx.requests())
    assert client.download("app.bin") == 0


def test_attack_mix_and_match(setup):
    repo, client = setup()
    repo.snapshot_hashes = True
    repo.add_target("a", b"1")
    repo.update("targets")
    v2 = repo.published["2.targets.json"]
    repo.add_target("a", b"2")
    repo.update("targets")
    # Serve the old targets file under the new version's name.
    repo.write_metadata("3.targets.json", v2)
    assert client.download("a") == 1
    assert client.version("targets") is None
    assert client.targets() == []


def test_attack_malicious_mirror(setup, tmp_path, nginx):
    repo, client = setup()
    repo.add_target("fw", b"genuine")
    repo.update("targets")
    # A mirror holding a tampered copy: refused, state intact.
    mirror = os.path.join(nginx.root, "mirror")
    import shutil
    shutil.copytree(repo.path, mirror)
    tampered = json.loads(repo.published["2.targets.json"])
    tampered["signed"]["targets"]["fw"]["length"] = 999
    with open(os.path.join(mirror, "metadata", "2.targets.json"), "w") as f:
        json.dump(tampered, f)
    good_md, good_td = client.metadata_url, client.targets_url
    client.metadata_url = nginx.url("mirror/metadata/")
    client.targets_url = nginx.url("mirror/targets/")
    assert client.download("fw") == 1
    assert client.version("targets") is None
    # The good mirror still works: a bad mirror cannot block the update.
    client.metadata_url, client.targets_url = good_md, good_td
    assert client.download("fw") == 0
    assert (client.td / "fw").read_bytes() == b"genuine"


def test_attack_key_compromise_below_threshold(setup):
    repo, client = setup(key_types={"targets": ["ed25519", "ecdsa", "rsa"]},
                         thresholds={"targets": 2})
    repo.add_target("ok", b"ok")
    repo.update("targets")
    assert client.download("ok") == 0
    # One stolen targets key signs alone.
    stolen = repo.signers["targets"][0]
    repo.signers["targets"] = [stolen]
    repo.add_target("evil", b"evil")
    repo.update("targets")
    assert client.download("evil") == 1
    assert client.version("targets") == 2


def test_attack_wrong_software_installation(setup):
    repo, client = setup()
    repo.add_delegation("targets", "apps-team", paths=["apps/*"])
    repo.add_target("apps/viewer", b"viewer", role="apps-team")
    # The apps team also signs a bootloader it was never trusted for.
    repo.add_target("boot/u-boot.bin", b"evil bootloader", role="apps-team")
    repo.update("apps-team", "targets")
    assert client.download("apps/viewer") == 0
    assert client.download("boot/u-boot.bin") == 1
    assert "boot%2Fu-boot.bin" not in client.targets()
    # Same bytes, asked for under another name: hashes are bound to the path.
    sha = hashlib.sha256(b"viewer").hexdigest()
    assert client.download(sha) == 1
