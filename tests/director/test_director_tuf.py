# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the director signs is a valid TUF repository for independent clients: the device's
metadata, copied through signed requests into a folder, refreshes with otter-tuf (the
project's TUF client) and with tuf-js (npm), before and after an assignment changes it; a
tampered copy is refused."""

import json
import os

import pytest

from conftest import BUILD_DIR, binary, run
from servers import Nginx
from tufjs_install import SCRIPT as TUFJS_SCRIPT, install_tufjs
from test_director_device import assign, registered

def otter_tuf(md, url, *cmd):
    return run([binary("otter-tuf"), "--metadata-dir", md, "--metadata-url", url, *cmd])[2]


def test_device_metadata_verifies_with_otter_tuf(director, ceremony, tmp_path):
    d = registered(director, "dev-tuf", secondaries=1)
    repo, md = tmp_path / "repo", tmp_path / "client"
    d.fetch_repository(str(repo))
    url = f"file://{repo}/"
    assert run([binary("otter-tuf"), "--metadata-dir", md, "init", ceremony["root"]])[2] == 0
    assert otter_tuf(md, url, "refresh") == 0
    trusted = json.loads((md / "targets.json").read_text())
    assert trusted["signed"]["custom"]["device_id"] == "dev-tuf"
    # A change of assignment: the client follows to the new versions.
    assign(director, d, d.ecus[1])
    d.fetch_repository(str(repo))
    assert otter_tuf(md, url, "refresh") == 0
    trusted = json.loads((md / "targets.json").read_text())
    assert d.ecus[1].serial in trusted["signed"]["targets"]["fw/app-2.0.bin"]["custom"][
        "ecuIdentifiers"]


def test_tampered_device_metadata_refused_by_otter_tuf(director, ceremony, tmp_path):
    d = registered(director, "dev-tamper")
    assign(director, d, d.primary)
    repo, md = tmp_path / "repo", tmp_path / "client"
    tg = d.fetch_repository(str(repo))
    path = repo / f"{tg['signed']['version']}.targets.json"
    doc = json.loads(path.read_text())
    doc["signed"]["targets"]["fw/app-2.0.bin"]["length"] += 1
    path.write_text(json.dumps(doc))
    run([binary("otter-tuf"), "--metadata-dir", md, "init", ceremony["root"]], check=True)
    assert otter_tuf(md, f"file://{repo}/", "refresh") != 0


@pytest.fixture(scope="session")
def tufjs():
    """(node, NODE_PATH) with tuf-js, the same install as tests/integration's."""
    return install_tufjs(BUILD_DIR, run)


def test_device_metadata_verifies_with_tufjs(director, ceremony, tmp_path, tufjs):
    node, node_path = tufjs
    d = registered(director, "dev-js", secondaries=1)
    nginx = Nginx(str(tmp_path / "nginx"))
    try:
        repo = os.path.join(nginx.root, "director")
        md, td = str(tmp_path / "js-md"), str(tmp_path / "js-td")

        def refresh():
            out, err, rc = run([node, TUFJS_SCRIPT, nginx.url("director/"),
                                nginx.url("targets/"), md, td, str(ceremony["root"])],
                               env={"NODE_PATH": node_path, "NODE_NO_WARNINGS": "1"})
            lines = [line for line in out.splitlines() if line.startswith("{")]
            assert lines, f"no result from tuf-js: {out} {err}"
            return rc, json.loads(lines[-1])

        d.fetch_repository(repo)
        rc, res = refresh()
        assert rc == 0 and res["ok"], res
        v1 = res["versions"]["targets"]
        assign(director, d, d.ecus[1])
        d.fetch_repository(repo)
        rc, res = refresh()
        assert rc == 0 and res["ok"], res
        assert res["versions"]["targets"] == v1 + 1
        with open(os.path.join(md, "targets.json")) as f:
            t = json.load(f)
        assert t["signed"]["custom"]["device_id"] == "dev-js"
        assert "fw/app-2.0.bin" in t["signed"]["targets"]
    finally:
        nginx.stop()
