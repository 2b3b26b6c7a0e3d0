# SPDX-License-Identifier: LGPL-2.1-or-later
"""Helpers of the rollout suites (test_rollout*.py): a signed image repository made with
otter-repo and read by the director through file://, the admin API over HTTP, and a fleet of
simulated devices that poll, install and report like the device client of client.py."""

import json
import os
import signal
import subprocess
import time

from client import request
from conftest import ADMIN_TOKEN, binary, run

P = "/director/v1/"


class ImageRepo:
    """An image repository (otter-repo init/add-release/publish); releases are TUF targets
    releases/<compatible>/<version>.json. The director trusts its root.json."""

    def __init__(self, base):
        self.base = base
        self.repo = os.path.join(base, "repo")
        self.keys = os.path.join(base, "keys")
        self.trusted = os.path.join(base, "trusted")
        run([binary("otter-repo"), "init", "--repo", self.repo, "--keys-dir", self.keys, "-q"],
            check=True)
        os.makedirs(self.trusted)
        with open(os.path.join(self.repo, "metadata", "1.root.json"), "rb") as f:
            root = f.read()
        with open(os.path.join(self.trusted, "root.json"), "wb") as f:
            f.write(root)

    def release(self, version, compatible="acme"):
        img = os.path.join(self.base, f"rootfs-{version}.img")
        with open(img, "wb") as f:
            f.write(os.urandom(4096))
        run([binary("otter-repo"), "add-release", "--repo", self.repo, "--compatible",
             compatible, "--version", version, "--image", f"rootfs={img}", "-q"], check=True)
        run([binary("otter-repo"), "publish", "--repo", self.repo, "--key",
             os.path.join(self.keys, "targets-1.pem"), "-q"], check=True)
        return f"releases/{compatible}/{version}.json"

    def conf(self):
        return ("[image-repository]\n"
                f"metadata-url = file://{self.repo}/metadata/\n"
                f"metadata-dir = {self.trusted}\n")


def admin(director, op, body):
    """POST /director/v1/admin/<op>; returns (status, JSON answer)."""
    r = request(director.url, "POST", P + "admin/" + op, json.dumps(body).encode(),
                headers={"Authorization": "Bearer " + ADMIN_TOKEN})
    return r.status, r.json()


def admin_ok(director, op, body):
    status, doc = admin(director, op, body)
    assert status == 200, (op, body, status, doc)
    return doc


def cli_json(director, *args):
    out, err, rc = director.cli(*args, "--json")
    assert rc == 0, err
    return json.loads(out)


class SimDevice:
    """A registered device that polls its metadata and reports installs."""

    def __init__(self, director, name, token, base=None):
        self.director = director
        self.base = base  # another server on the same database; None: director's
        self.dev = director.device(name)
        r = self.dev.register(token)
        assert r.status == 201, r.body
        self.n = 0

    @property
    def id(self):
        return self.dev.device_id

    def poll(self):
        """Fetches the device's metadata; returns (target path, correlation id) or None."""
        self.dev.base = self.base or self.director.url
        self.n += 1
        tg = self.dev.fetch_repository(str(self.director.tmp / f"{self.id}-{self.n}"))
        targets = tg["signed"]["targets"]
        if not targets:
            return None
        assert len(targets) == 1, targets
        path, entry = next(iter(targets.items()))
        ids = entry["custom"]["ecuIdentifiers"]
        assert ids == {self.dev.primary.serial: {"hardwareId": "hw-main"}}
        return path, entry["custom"]["correlationId"], entry

    def report(self, success, code="OK", description=""):
        """Polls, "installs" the assigned target and reports the outcome."""
        got = self.poll()
        assert got, f"{self.id} has nothing assigned"
        path, corr, entry = got
        result = {"success": success, "code": code, "description": description}
        rep = {"correlation_id": corr, "result": result}
        if success:
            self.dev.primary.installed = {"filepath": path, "fileinfo": {
                "length": entry["length"], "hashes": entry["hashes"]}}
        else:
            rep["items"] = [{"ecu": self.dev.primary.serial, "result": result}]
        self.dev.base = self.base or self.director.url
        r = self.dev.put_manifest(self.dev.manifest(report=rep))
        assert r.status == 204, r.body
        return corr


class SecondServer:
    """Another otter-director process serving the director's database (its configuration)."""

    def __init__(self, director):
        self.tmp = director.tmp
        port_file = self.tmp / "port-2"
        self.log = open(self.tmp / "director-2.log", "ab")
        self.proc = subprocess.Popen(
            [binary("otter-director"), "--config", str(director.conf), "serve", "--listen",
             "127.0.0.1:0", "--port-file", str(port_file)],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while not port_file.exists():
            assert self.proc.poll() is None, "second otter-director exited"
            assert time.time() < deadline, "second otter-director did not start"
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=30) == 0
        self.log.close()
