"""otter-tuf driven as a subprocess, with its own metadata and target folders."""

import json
import os
from urllib.parse import quote

import pytest

from conftest import binary, run
from tufrepo import Repository


class Client:
    """otter-tuf with its own metadata and target folders, pointed at a served repository."""

    def __init__(self, tmp_path, nginx, repo_name="repo"):
        self.exe = binary("otter-tuf")
        self.md = tmp_path / "client-metadata"
        self.td = tmp_path / "client-targets"
        self.md.mkdir()
        self.td.mkdir()
        self.metadata_url = nginx.url(f"{repo_name}/metadata/")
        self.targets_url = nginx.url(f"{repo_name}/targets/")

    def init(self, root_bytes):
        p = self.md.parent / "trusted-root.json"
        p.write_bytes(root_bytes)
        return run([self.exe, "--metadata-dir", self.md, "init", p])[2]

    def refresh(self, env=None):
        return run([self.exe, "--metadata-dir", self.md, "--metadata-url", self.metadata_url,
                    "refresh"], env=env)[2]

    def download(self, *names, env=None, extra=()):
        cmd = [self.exe, *extra, "--metadata-dir", self.md, "--metadata-url", self.metadata_url,
               "--target-base-url", self.targets_url, "--target-dir", self.td]
        for n in names:
            cmd += ["--target-name", n]
        return run(cmd + ["download"], env=env)[2]

    def version(self, role):
        p = self.md / f"{quote(role, safe='')}.json"
        if not p.exists():
            return None
        return json.loads(p.read_bytes())["signed"]["version"]

    def files(self):
        return sorted(os.listdir(self.md))

    def targets(self):
        return sorted(os.listdir(self.td))


@pytest.fixture
def setup(tmp_path, nginx):
    """make(**Repository kwargs) -> (repo served by nginx, initialised client)."""
    def make(**kw):
        repo = Repository(os.path.join(nginx.root, "repo"), **kw)
        client = Client(tmp_path, nginx)
        assert client.init(repo.published["1.root.json"]) == 0
        return repo, client
    return make
