# SPDX-License-Identifier: LGPL-2.1-or-later
"""The director end to end, on SQLite and PostgreSQL: a release in an image repository made
with otter-repo (served by nginx), assigned with the operator's `assign` command and through
the admin API, reaches the device in its signed targets; the device's report shows in the
fleet view; an image the image repository does not sign is refused."""

import hashlib
import json
import os
import shutil

import pytest

from client import request
from conftest import ADMIN_TOKEN, binary, run
from servers import Nginx
from test_director_device import registered

IMAGE = b"gateway image 2.0\n" * 100


@pytest.fixture
def image_repo(tmp_path):
    """An image repository with one target, served by nginx; the director's trusted copy of
    its root in a metadata folder."""
    nginx = Nginx(str(tmp_path / "nginx"))
    repo = os.path.join(nginx.root, "repo")
    keys = tmp_path / "image-keys"
    otter_repo = binary("otter-repo")
    run([otter_repo, "init", "--repo", repo, "--keys-dir", keys, "-q"], check=True)
    img = tmp_path / "app.bin"
    img.write_bytes(IMAGE)
    run([otter_repo, "add-target", img, "--path", "fw/app-2.0.bin", "--custom",
         '{"version": "2.0"}', "--repo", repo, "-q"], check=True)
    run([otter_repo, "publish", "--key", keys / "targets-1.pem", "--repo", repo, "-q"],
        check=True)
    trusted = tmp_path / "image-trusted"
    trusted.mkdir()
    shutil.copy(os.path.join(repo, "metadata", "1.root.json"), trusted / "root.json")
    yield nginx.url("repo/metadata/"), str(trusted)
    nginx.stop()


@pytest.fixture
def e2e(director, image_repo):
    url, trusted = image_repo
    director.stop()
    director.start(f"[image-repository]\nmetadata-url = {url}\nmetadata-dir = {trusted}\n")
    return director


def test_assign_reaches_the_device_and_its_report_the_fleet_view(e2e):
    d = registered(e2e, "dev-e2e")
    v0 = d.get_json("timestamp.json")["signed"]["version"]
    e2e.cli("assign", "--target", "fw/app-2.0.bin", "--device", "dev-e2e", check=True)
    assert d.get_json("timestamp.json")["signed"]["version"] == v0 + 1
    tg = d.fetch_repository(str(e2e.tmp / "repo"))
    entry = tg["signed"]["targets"]["fw/app-2.0.bin"]
    assert entry["length"] == len(IMAGE)
    assert entry["hashes"]["sha256"] == hashlib.sha256(IMAGE).hexdigest()
    assert entry["custom"]["version"] == "2.0"
    assert entry["custom"]["ecuIdentifiers"] == {d.primary.serial: {"hardwareId": "hw-main"}}
    corr = entry["custom"]["correlationId"]
    d.primary.installed = {"filepath": "fw/app-2.0.bin",
                           "fileinfo": {"length": len(IMAGE),
                                        "hashes": {"sha256": hashlib.sha256(IMAGE).hexdigest()}}}
    rep = {"correlation_id": corr, "result": {"success": True, "code": "OK", "description": ""}}
    assert d.put_manifest(d.manifest(report=rep)).status == 204
    out, _, _ = e2e.cli("fleet", "--json", check=True)
    assert "dev-e2e" in out and "fw/app-2.0.bin" in out and "installed" in out


def test_admin_api_assigns_and_refuses_unsigned_images(e2e):
    d = registered(e2e, "dev-api")
    auth = {"Authorization": "Bearer " + ADMIN_TOKEN}
    body = json.dumps({"target": "fw/app-2.0.bin", "devices": ["dev-api"]}).encode()
    r = request(e2e.url, "POST", "/director/v1/admin/assign", body, headers=auth)
    assert r.status == 200, r.body
    tg = d.fetch_repository(str(e2e.tmp / "repo"))
    assert "fw/app-2.0.bin" in tg["signed"]["targets"]
    v = tg["signed"]["version"]
    # A target the image repository does not sign is refused; nothing changes for the device.
    body = json.dumps({"target": "fw/evil.bin", "devices": ["dev-api"]}).encode()
    r = request(e2e.url, "POST", "/director/v1/admin/assign", body, headers=auth)
    assert r.status == 404 and r.json()["error"] == "not_found"
    _, _, rc = e2e.cli("assign", "--target", "fw/evil.bin", "--device", "dev-api")
    assert rc == 1
    assert d.fetch_repository(str(e2e.tmp / "repo2"))["signed"]["version"] == v
