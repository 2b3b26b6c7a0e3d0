# SPDX-License-Identifier: LGPL-2.1-or-later
"""One device speaking Uptane: an otter-director on SQLite that trusts the image repository
of tests/integration's UpdateEnv (otter-repo behind nginx), and that UpdateEnv's simulated
device with an [uptane] section."""

import json
import os
import shutil

from agentfixture import UpdateEnv
from conftest import director_conftest


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
