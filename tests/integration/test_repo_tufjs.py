"""Interoperability: tuf-js, an independent TUF client (npm), refreshes against what otter-repo
publishes and downloads targets, also after root rotation, online key revocation,
delegations and succinct hash bins. tuf-js is installed with npm into the build folder once
(pinned; it runs on Node.js 18 and 20)."""

import json
import os
import shutil

import pytest

from conftest import BUILD_DIR, binary, run
from otterrepo import OtterRepo, make_repo, write
from tufjs_install import SCRIPT, install_tufjs


@pytest.fixture(scope="session")
def tufjs():
    """(node, NODE_PATH) with tuf-js installed under the build folder."""
    return install_tufjs(BUILD_DIR, run)


class TufJs:
    def __init__(self, tufjs, base, nginx, name="tufjs"):
        self.node, self.node_path = tufjs
        self.md = os.path.join(str(base), name, "metadata")
        self.td = os.path.join(str(base), name, "targets")
        self.metadata_url = nginx.url("repo/metadata/")
        self.targets_url = nginx.url("repo/targets/")

    def __call__(self, trusted_root, *targets):
        out, err, rc = run([self.node, SCRIPT, self.metadata_url, self.targets_url, self.md,
                            self.td, trusted_root, *targets],
                           env={"NODE_PATH": self.node_path, "NODE_NO_WARNINGS": "1"})
        lines = [l for l in out.splitlines() if l.startswith("{")]
        assert lines, f"no result from tuf-js: {out} {err}"
        return rc, json.loads(lines[-1])

    def target(self, name):
        from urllib.parse import quote
        with open(os.path.join(self.td, quote(name, safe="")), "rb") as f:
            return f.read()


def test_tufjs_downloads_from_otter_repo(tmp_path, nginx, tufjs):
    keys = str(tmp_path / "keys")
    repo = make_repo(nginx, keys, "--key-type", "root=ecdsa-p256", "--key-type",
                     "targets=rsa-pss", "--keys", "root=3", "--threshold", "root=2")
    data = os.urandom(20000)
    f1 = write(tmp_path / "img", data)
    f2 = write(tmp_path / "cfg", b"config\n")
    repo("add-target", f1, f2, "--path", "images/2024/rootfs.img", "config.txt",
         "--custom", '{"hardware": "board-a"}')
    repo("publish", "--key", os.path.join(keys, "targets-1.pem"))
    root1 = os.path.join(repo.metadata, "1.root.json")
    client = TufJs(tufjs, tmp_path, nginx)
    rc, res = client(root1, "images/2024/rootfs.img", "config.txt")
    assert rc == 0 and res["ok"], res
    assert res["versions"] == {"root": 1, "timestamp": 2, "snapshot": 2, "targets": 2}
    assert client.target("images/2024/rootfs.img") == data
    assert client.target("config.txt") == b"config\n"
    # A target nobody lists is not found; a tampered file is refused.
    rc, res = client(root1, "nope.bin")
    assert rc == 1 and "nope.bin" in res["error"]
    import hashlib
    sha = hashlib.sha256(b"config\n").hexdigest()
    write(os.path.join(repo.path, "targets", f"{sha}.config.txt"), b"evil!!\n")
    os.unlink(os.path.join(client.td, "config.txt"))
    rc, res = client(root1, "config.txt")
    assert rc == 1 and not res["ok"]


def test_tufjs_follows_rotations(tmp_path, nginx, tufjs):
    keys = str(tmp_path / "keys")
    k = lambda n: os.path.join(keys, n)
    repo = make_repo(nginx, keys, "--keys", "root=2")
    root1 = os.path.join(repo.metadata, "1.root.json")
    client = TufJs(tufjs, tmp_path, nginx)
    assert client(root1)[0] == 0
    # Root: one key replaced, threshold raised to 2.
    run([binary("otter-repo"), "key", "gen", k("root-3")], check=True)
    repo("rotate", "root", "--add-key", k("root-3.pub"), "--remove-key", k("root-2.pub"),
         "--threshold", "2")
    repo("publish", "--key", k("root-1.pem"), k("root-2.pem"), k("root-3.pem"))
    # Timestamp key revoked and replaced; targets key replaced too.
    run([binary("otter-repo"), "key", "gen", "--type", "ecdsa-p256", k("timestamp-2")],
        check=True)
    run([binary("otter-repo"), "key", "gen", "--type", "rsa-pss", k("targets-2")], check=True)
    repo("rotate", "timestamp", "--add-key", k("timestamp-2.pub"), "--remove-key",
         k("timestamp-1.pub"))
    repo("rotate", "targets", "--add-key", k("targets-2.pub"), "--remove-key",
         k("targets-1.pub"))
    repo.set_online_key("timestamp", k("timestamp-2.pem"))
    f = write(tmp_path / "after.bin", b"after rotation")
    repo("add-target", f)
    repo("publish", "--key", k("root-1.pem"), k("root-3.pem"), k("targets-2.pem"))
    rc, res = client(root1, "after.bin")
    assert rc == 0, res
    assert res["versions"]["root"] == 3
    assert client.target("after.bin") == b"after rotation"
    # A fresh tuf-js client from root 1 walks the chain too.
    fresh = TufJs(tufjs, tmp_path, nginx, name="fresh")
    rc, res = fresh(root1, "after.bin")
    assert rc == 0 and res["versions"]["root"] == 3, res


def test_tufjs_delegations_and_hash_bins(tmp_path, nginx, tufjs):
    keys = str(tmp_path / "keys")
    k = lambda n: os.path.join(keys, n)
    repo = make_repo(nginx, keys)
    for name in ("team", "sub"):
        run([binary("otter-repo"), "key", "gen", k(name)], check=True)
    # targets -> team (team/*) -> sub (team/sub-*), terminating.
    repo("delegate", "team", "--paths", "team/*", "--key", k("team.pub"))
    repo("publish", "--key", k("targets-1.pem"), k("team.pem"))
    repo("delegate", "sub", "--from", "team", "--paths", "team/sub-*", "--key", k("sub.pub"),
         "--terminating")
    f1 = write(tmp_path / "t1", b"team file")
    f2 = write(tmp_path / "t2", b"sub file")
    repo("add-target", f1, "--path", "team/app.bin", "--role", "team")
    repo("add-target", f2, "--path", "team/sub-tool.bin", "--role", "sub")
    repo("publish", "--key", k("team.pem"), k("sub.pem"))
    root1 = os.path.join(repo.metadata, "1.root.json")
    client = TufJs(tufjs, tmp_path, nginx)
    rc, res = client(root1, "team/app.bin", "team/sub-tool.bin")
    assert rc == 0, res
    assert client.target("team/sub-tool.bin") == b"sub file"

    # A second repository with succinct hash bins.
    shutil.rmtree(repo.path)
    keys2 = str(tmp_path / "keys2")
    repo = make_repo(nginx, keys2)
    run([binary("otter-repo"), "key", "gen", os.path.join(keys2, "bins")], check=True)
    repo("delegate", "bins", "--succinct", "4", "--key", os.path.join(keys2, "bins.pub"))
    names = [f"pkgs/p{i}.deb" for i in range(10)]
    files = [write(tmp_path / "p" / f"p{i}.deb", f"deb {i}".encode()) for i in range(10)]
    repo("add-target", *files, "--path", *names)
    repo("publish", "--key", os.path.join(keys2, "targets-1.pem"),
         os.path.join(keys2, "bins.pem"))
    client = TufJs(tufjs, tmp_path, nginx, name="bins-client")
    rc, res = client(os.path.join(repo.metadata, "1.root.json"), *names)
    assert rc == 0, res
    assert client.target("pkgs/p3.deb") == b"deb 3"
