"""otter-tuf against repositories generated in code and served by nginx on 127.0.0.1:
the basic workflow, key types, stored bytes, caching, consistent and plain layouts."""

import os

import pytest

from conftest import binary, run
from tufclient import Client, setup  # noqa: F401 (fixture)
from tufrepo import Key, Repository


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_refresh_and_download_every_key_type(setup, kind):
    repo, client = setup(key_types={r: kind for r in ("root", "timestamp", "snapshot",
                                                          "targets")})
    repo.add_target("file.txt", b"hello otter")
    repo.add_target("dir/sub/image.bin", b"\x00" * 1000, hash_algs=("sha256", "sha512"))
    repo.update("targets")
    assert client.refresh() == 0
    assert client.files() == ["root.json", "snapshot.json", "targets.json", "timestamp.json"]
    assert client.download("file.txt", "dir/sub/image.bin") == 0
    assert client.targets() == ["dir%2Fsub%2Fimage.bin", "file.txt"]
    assert (client.td / "file.txt").read_bytes() == b"hello otter"


def test_mixed_key_types_and_thresholds(setup):
    repo, client = setup(key_types={"root": ["rsa", "ecdsa", "ed25519"],
                                    "targets": ["ecdsa", "ed25519"],
                                    "snapshot": "rsa", "timestamp": "ecdsa"},
                         thresholds={"root": 2, "targets": 2})
    repo.add_target("a", b"a")
    repo.update("targets")
    assert client.download("a") == 0


def test_first_refresh_request_sequence(setup, nginx):
    repo, client = setup()
    nginx.clear_log()
    assert client.refresh() == 0
    assert nginx.requests() == [("/repo/metadata/2.root.json", 404),
                                ("/repo/metadata/timestamp.json", 200),
                                ("/repo/metadata/1.snapshot.json", 200),
                                ("/repo/metadata/1.targets.json", 200)]
    # Nothing changed: only the root probe and the timestamp are fetched again.
    nginx.clear_log()
    assert client.refresh() == 0
    assert nginx.requests() == [("/repo/metadata/2.root.json", 404),
                                ("/repo/metadata/timestamp.json", 200)]


def test_stored_bytes_are_the_served_bytes(setup):
    repo, client = setup()
    # A trailing space and odd formatting do not change the signed content.
    data = repo.serialise("targets") + b" "
    repo.signed["targets"]["version"] += 1
    data = repo.serialise("targets") + b"   \n"
    repo.publish_role("targets", data=data)
    repo.signed["snapshot"]["meta"]["targets.json"] = {"version": 2}
    repo.publish(["snapshot", "timestamp"])
    assert client.refresh() == 0
    assert (client.md / "targets.json").read_bytes() == data
    assert (client.md / "timestamp.json").read_bytes() == repo.published["timestamp.json"]


def test_plain_layout_without_consistent_snapshots(setup, nginx):
    repo, client = setup(consistent=False)
    repo.add_target("x/y.txt", b"plain")
    repo.update("targets")
    nginx.clear_log()
    assert client.download("x/y.txt") == 0
    paths = [p for p, _ in nginx.requests()]
    assert "/repo/metadata/snapshot.json" in paths
    assert "/repo/metadata/targets.json" in paths
    assert "/repo/targets/x/y.txt" in paths


def test_artifact_cache_and_overwrite(setup, nginx):
    repo, client = setup()
    repo.add_target("t.bin", b"version one")
    repo.update("targets")
    assert client.download("t.bin") == 0
    nginx.clear_log()
    assert client.download("t.bin") == 0
    assert not any("/targets/" in p for p, _ in nginx.requests()), "cached target refetched"
    repo.add_target("t.bin", b"version two")
    repo.update("targets")
    assert client.download("t.bin") == 0
    assert (client.td / "t.bin").read_bytes() == b"version two"
    assert client.targets() == ["t.bin"]


def test_download_order_stops_at_first_failure(setup):
    repo, client = setup()
    repo.add_target("one", b"1")
    repo.add_target("three", b"3")
    repo.update("targets")
    assert client.download("one", "two-is-missing", "three") == 1
    assert client.targets() == ["one"]


def test_unknown_hash_algorithm_fails_and_stores_nothing(setup):
    repo, client = setup()
    entry = repo.add_target("odd", b"data")
    entry["hashes"] = {"sha3-512": "00" * 64}
    repo.write_target("odd", b"data", entry["hashes"])
    repo.update("targets")
    assert client.download("odd") == 1
    assert client.targets() == []


def test_init_and_usage_errors(tmp_path, nginx):
    exe = binary("otter-tuf")
    md = tmp_path / "md"
    # A file that is not root metadata is refused by init.
    bad = tmp_path / "bad.json"
    bad.write_text('{"signed": {"_type": "targets"}, "signatures": []}')
    assert run([exe, "--metadata-dir", md, "init", bad])[2] == 1
    assert run([exe, "--metadata-dir", md, "init", tmp_path / "missing.json"])[2] == 1
    assert run([exe, "refresh"])[2] == 1
    assert run([exe, "--metadata-dir", md, "frobnicate"])[2] == 1
    assert run([exe, "--metadata-dir", md, "--metadata-url", nginx.url(), "download"])[2] == 1
    out, _, rc = run([exe, "--help"])
    assert rc == 0 and "--target-name" in out and "Exit status" in out


def test_options_in_any_order(setup):
    repo, client = setup()
    repo.add_target("f", b"f")
    repo.update("targets")
    _, _, rc = run([client.exe, "download", "--target-dir", client.td, "--target-name", "f",
                    "--metadata-url", client.metadata_url, "--target-base-url",
                    client.targets_url, "--metadata-dir", client.md])
    assert rc == 0
    assert client.targets() == ["f"]


def test_invalid_trusted_root_makes_no_request(tmp_path, nginx):
    repo = Repository(os.path.join(nginx.root, "repo"))
    client = Client(tmp_path, nginx)
    env = repo.envelope("root", keys=[Key()])  # signed by a key root does not list
    import json
    assert client.init(json.dumps(env).encode()) == 0
    nginx.clear_log()
    assert client.refresh() == 1
    assert nginx.requests() == []
