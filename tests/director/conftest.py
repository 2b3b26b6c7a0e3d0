# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures of the director suites: the built binaries, one offline root ceremony per session
(otter-repo, as docs/director.md describes), a PostgreSQL server per session (pg.py), and a
running otter-director per test on a fresh database of the engine the test is parametrized
with ("sqlite" and "postgresql": every test runs on both)."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from client import Device  # noqa: E402
from pg import PgServer  # noqa: E402

BUILD_DIR = os.path.abspath(os.environ.get("OTTER_BUILD_DIR") or
                            os.path.join(HERE, "..", "..", "build"))
SANITIZED = os.environ.get("OTTER_SANITIZED") == "1"
ADMIN_TOKEN = "admin-token-for-the-tests-0123456789"


def binary(name):
    direct = os.path.join(BUILD_DIR, name)
    if os.path.exists(direct):
        return direct
    for root, _dirs, files in os.walk(BUILD_DIR):
        if name in files:
            return os.path.join(root, name)
    raise FileNotFoundError(f"{name} not built in {BUILD_DIR}")


def run(cmd, check=None, timeout=120, env=None):
    """Runs cmd, logs it, returns (stdout, stderr, rc); check True/False asserts the outcome."""
    print("$ " + " ".join(str(c) for c in cmd))
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, **(env or {})})
    if p.stdout:
        print(p.stdout.rstrip())
    if p.stderr:
        print(p.stderr.rstrip())
    if check is True:
        assert p.returncode == 0, f"{cmd} failed ({p.returncode}): {p.stderr}"
    elif check is False:
        assert p.returncode != 0, f"{cmd} unexpectedly succeeded"
    return p.stdout, p.stderr, p.returncode


@pytest.fixture(scope="session")
def ceremony(tmp_path_factory):
    """The offline root ceremony, once: otter-repo makes the director's keys and root version 1
    in an offline folder; the server gets only the online private keys."""
    base = tmp_path_factory.mktemp("ceremony")
    keys = base / "keys"
    run([binary("otter-repo"), "init", "--repo", base / "offline", "--keys-dir", keys, "-q"],
        check=True)
    return {"keys": keys, "offline": base / "offline",
            "root": base / "offline" / "metadata" / "1.root.json"}


_pg = None


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    global _pg
    _pg = PgServer(str(tmp_path_factory.mktemp("pg"))).start()
    yield _pg
    _pg.stop()


_db_counter = [0]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request):
    return request.param


class Director:
    """One otter-director on a fresh database; start()/stop() as often as a test wants."""

    def __init__(self, tmp_path, ceremony, engine, pg):
        self.tmp = tmp_path
        self.engine = engine
        self.pg = pg
        if engine == "sqlite":
            self.db_path = str(tmp_path / "director.db")
            self.db_url = "sqlite:" + self.db_path
        else:
            _db_counter[0] += 1
            self.db_name = f"director_{os.getpid()}_{_db_counter[0]}"
            self.db_url = pg.new_database(self.db_name)
        token_file = tmp_path / "admin-token"
        token_file.write_text(ADMIN_TOKEN + "\n")
        self.conf = tmp_path / "director.conf"
        k = ceremony["keys"]
        self.conf.write_text(
            "[database]\n"
            f"url = {self.db_url}\n"
            "[server]\n"
            "threads = 2\n"
            "[keys]\n"
            f"targets = {k / 'targets-1.pem'}\n"
            f"snapshot = {k / 'snapshot-1.pem'}\n"
            f"timestamp = {k / 'timestamp-1.pem'}\n"
            "[admin]\n"
            f"token-file = {token_file}\n")
        self.proc = None
        self.port = None
        self.cli("root", "import", ceremony["root"], check=True)

    def cli(self, *args, check=None):
        return run([binary("otter-director"), "--config", self.conf, *args], check=check)

    def start(self, extra_conf=""):
        if extra_conf:
            self.conf.write_text(self.conf.read_text() + extra_conf)
        port_file = self.tmp / "port"
        if port_file.exists():
            port_file.unlink()
        self.log = open(self.tmp / "director.log", "ab")
        self.proc = subprocess.Popen(
            [binary("otter-director"), "--config", str(self.conf), "serve", "--listen",
             "127.0.0.1:0", "--port-file", str(port_file)],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while not port_file.exists():
            assert self.proc.poll() is None, "otter-director exited: " + self.log_text()
            assert time.time() < deadline, "otter-director did not start"
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout=30)
            assert rc == 0, f"otter-director exited with {rc} on SIGTERM: {self.log_text()}"
        self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        p = self.tmp / "director.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def device(self, device_id, **kw):
        return Device(self.url, device_id, **kw)

    def sql(self, statement, params=()):
        """Runs SQL on the director's database (test set-up and inspection)."""
        if self.engine == "sqlite":
            con = sqlite3.connect(self.db_path, timeout=30)
            try:
                cur = con.execute(statement, params)
                rows = cur.fetchall()
                con.commit()
                return [tuple(str(c) if c is not None else None for c in r) for r in rows]
            finally:
                con.close()
        assert not params, "postgresql: inline the values"
        out = self.pg.psql(statement, self.db_name)
        return [tuple(line.split("|")) for line in out.splitlines() if line]

    def token(self, *args):
        out, _, _ = self.cli("token", "create", *args, check=True)
        return out.strip()


@pytest.fixture
def director(tmp_path, ceremony, engine, request):
    pg = request.getfixturevalue("pg_server") if engine == "postgresql" else None
    d = Director(tmp_path, ceremony, engine, pg)
    d.start()
    yield d
    try:
        d.stop()
    finally:
        print(d.log_text()[-4000:])
