# SPDX-License-Identifier: LGPL-2.1-or-later
"""One device speaking Uptane: an otter-director on SQLite that trusts the image repository
of tests/integration's UpdateEnv (otter-repo behind nginx), and that UpdateEnv's simulated
device with an [uptane] section."""

import importlib.util
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "director"))

from agentfixture import UpdateEnv  # noqa: E402


def _director_module():
    """tests/director/conftest.py (its Director class), loaded under its own name: every
    suite folder has a module called conftest."""
    spec = importlib.util.spec_from_file_location(
        "director_conftest", os.path.join(HERE, "..", "director", "conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


director_conftest = _director_module()


def make_ceremony(base):
    """The director's offline root ceremony (otter-repo), as tests/director does it."""
    keys = base / "keys"
    director_conftest.run([director_conftest.binary("otter-repo"), "init", "--repo",
                           base / "offline", "--keys-dir", keys, "-q"], check=True)
    return {"keys": keys, "offline": base / "offline",
            "root": base / "offline" / "metadata" / "1.root.json"}


class UptaneEnv(UpdateEnv):
    def __init__(self, tmp_path, nginx, ceremony, device_id="dev-1", hardware_id="gw-v1",
                 token=True, director_url=None, extra_uptane=""):
        super().__init__(tmp_path, nginx)
        self.ceremony = ceremony
        self.device_id = device_id
        self.serial = device_id + "-main"
        self.hardware_id = hardware_id
        ddir = tmp_path / "director"
        ddir.mkdir()
        trusted = ddir / "image-repository"
        trusted.mkdir()
        shutil.copy(os.path.join(self.repo.metadata, "1.root.json"), trusted / "root.json")
        self.director = director_conftest.Director(ddir, ceremony, "sqlite", None)
        self.director.start("[image-repository]\n"
                            f"metadata-url = file://{self.repo.metadata}/\n"
                            f"metadata-dir = {trusted}\n")
        self.token_file = os.path.join(self.base, "token")
        if token:
            with open(self.token_file, "w") as f:
                f.write(self.director.token() + "\n")
        self.uptane_conf(director_url, extra_uptane)

    def uptane_conf(self, director_url=None, extra=""):
        self.write_conf(f"""
[uptane]
director={director_url or self.director.url}
director-root={self.ceremony["root"]}
device-id={self.device_id}
ecu-serial={self.serial}
hardware-id={self.hardware_id}
token-file={self.token_file}
{extra}""")

    def stop(self):
        self.director.stop()

    # ---- the director's side ----

    def assign(self, version, compatible="test-device"):
        out, err, rc = self.director.cli("assign", "--target",
                                         f"releases/{compatible}/{version}.json", "--device",
                                         self.device_id, "--json")
        assert rc == 0, err
        return json.loads(out)

    def sql(self, statement):
        return self.director.sql(statement)

    def assignment(self):
        rows = self.sql(f"SELECT status, reason, correlation_id FROM assignments WHERE "
                        f"ecu_serial = '{self.serial}'")
        return rows[0] if rows else None

    def reported(self):
        """The image the director last heard this ECU runs, and its last report counter."""
        rows = self.sql("SELECT * FROM ecus WHERE serial = '" + self.serial + "'")
        return rows

    def uptane_status(self):
        return self.status()["agent"]["uptane"]

    def ecu_row(self):
        """(report_counter, installed_path, keyid) as the director stored them."""
        return self.sql("SELECT report_counter, installed_path, keyid FROM ecus WHERE "
                        f"serial = '{self.serial}'")[0]


class DirectorProxy:
    """An attacker between the device and the director (127.0.0.1): forwards every request,
    remembers each answer by path, and serves a chosen body instead for the paths in
    self.override (replayed, frozen, rolled-back or another device's metadata)."""

    def __init__(self, upstream):
        import http.server
        import threading
        import urllib.error
        import urllib.request

        self.upstream = upstream
        self.seen = {}
        self.override = {}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def relay(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                if self.path in proxy.override:
                    data = proxy.override[self.path]
                    status, data = (data, b"") if isinstance(data, int) else (200, data)
                else:
                    hdrs = {k: v for k, v in self.headers.items()
                            if k.lower() in ("otter-signature", "content-type")}
                    req = urllib.request.Request(proxy.upstream + self.path, data=body,
                                                 method=self.command, headers=hdrs)
                    try:
                        with urllib.request.urlopen(req, timeout=30) as r:
                            status, data = r.status, r.read()
                    except urllib.error.HTTPError as e:
                        status, data = e.code, e.read()
                    if status == 200:
                        proxy.seen[self.path] = data
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
