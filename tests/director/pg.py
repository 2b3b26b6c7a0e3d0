# SPDX-License-Identifier: LGPL-2.1-or-later
"""A throw-away PostgreSQL server for the director's tests (standard library only).

    from pg import PgServer

    PgServer(basedir: str | os.PathLike)
        A server whose cluster lives in basedir (created if missing; basedir should be
        empty or not exist). Nothing runs until start().
    .start() -> PgServer
        initdb (trust authentication, UTF-8, user "postgres") and start postgres listening
        on a unix socket and on 127.0.0.1 at a free port only; returns when it accepts
        connections (RuntimeError with the server log otherwise). When running as root
        (CI), initdb and postgres run as the unprivileged "postgres" system user that
        Debian's postgresql package creates, and the cluster folder is handed to it.
    .url -> str
        libpq URI over TCP: "postgresql://postgres@127.0.0.1:PORT/postgres".
    .socket_url -> str
        the same over the unix socket: "postgresql://postgres@/postgres?host=DIR&port=PORT".
    .port -> int, .socket_dir -> str, .data_dir -> str, .log_path -> str
    .new_database(name: str) -> str
        CREATE DATABASE name ([a-z_][a-z0-9_]*, at most 63 bytes) and return its TCP URI.
    .psql(sql: str, database: str = "postgres") -> str
        run SQL with psql over the socket, return its unaligned, tuples-only output.
    .stop() -> None
        fast shutdown (SIGINT), SIGKILL after 30 s; idempotent. Also runs at interpreter
        exit, so a failed test never leaves a server behind.
    with PgServer(d) as pg: ...      start() on entry, stop() on exit

The binaries come from the newest /usr/lib/postgresql/<version>/bin (Debian's layout) or
from $OTTER_PG_BINDIR.
"""

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

# The unix socket path must fit sockaddr_un (108 bytes) with ".s.PGSQL.NNNNN" appended.
_SOCKET_DIR_MAX = 80


def find_bindir():
    """The newest PostgreSQL bin folder holding initdb and postgres."""
    env = os.environ.get("OTTER_PG_BINDIR")
    if env:
        return env
    root = "/usr/lib/postgresql"
    versions = []
    if os.path.isdir(root):
        for v in os.listdir(root):
            b = os.path.join(root, v, "bin")
            if re.fullmatch(r"[0-9]+(\.[0-9]+)?", v) and os.path.exists(
                    os.path.join(b, "initdb")) and os.path.exists(os.path.join(b, "postgres")):
                versions.append((tuple(int(x) for x in v.split(".")), b))
    if not versions:
        raise RuntimeError("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin "
                           "(install the Debian package 'postgresql': make deps)")
    return max(versions)[1]


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, basedir):
        self.basedir = os.path.abspath(os.fspath(basedir))
        self.bindir = find_bindir()
        self.port = None
        self.proc = None
        self.data_dir = None
        self.socket_dir = None
        self.log_path = None
        self._owned_dirs = []  # folders made outside basedir, removed at stop()
        self._user = None      # the unprivileged user when running as root
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root but there is no 'postgres' user to run "
                                   "the server as (install the Debian package 'postgresql')")

    # -- helpers --

    def _demote(self):
        """preexec_fn: drop root for initdb/postgres (they refuse to run as root)."""
        u = self._user
        os.setgroups([])
        os.setgid(u.pw_gid)
        os.setuid(u.pw_uid)

    def _run_as_owner(self, args, **kw):
        env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")
        if self._user:
            env.update(HOME=self._user.pw_dir, USER="postgres", LOGNAME="postgres")
        return subprocess.Popen(args, env=env, cwd="/",
                                preexec_fn=self._demote if self._user else None, **kw)

    def _give(self, path):
        if self._user:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _reachable_by_owner(self, path):
        """Whether the server user can reach path (every parent searchable)."""
        if not self._user:
            return True
        p = os.path.dirname(path)
        while True:
            st = os.stat(p)
            if not (st.st_mode & 0o001 or (st.st_uid == self._user.pw_uid and st.st_mode & 0o100)
                    or (st.st_gid == self._user.pw_gid and st.st_mode & 0o010)):
                return False
            if p == "/":
                return True
            p = os.path.dirname(p)

    def _private_dir(self, prefix):
        d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        self._owned_dirs.append(d)
        return d

    # -- life cycle --

    def start(self):
        os.makedirs(self.basedir, exist_ok=True)
        self.log_path = os.path.join(self.basedir, "postgres.log")
        # The server user must reach its folders: pytest's tmp_path (/tmp/pytest-of-root/,
        # mode 0700) is out of its reach when running as root, so the cluster then goes to a
        # private folder under /tmp, removed by stop().
        self.data_dir = os.path.join(self.basedir, "pgdata")
        if not self._reachable_by_owner(self.data_dir):
            private = self._private_dir("otter-pg-")
            self._give(private)
            self.data_dir = os.path.join(private, "pgdata")
        os.makedirs(self.data_dir, mode=0o700)
        self._give(self.data_dir)
        # The socket goes into the cluster folder (the server user owns it) unless that path
        # is too long for a unix socket address.
        self.socket_dir = self.data_dir
        if len(self.socket_dir) > _SOCKET_DIR_MAX:
            self.socket_dir = self._private_dir("otter-pgs-")
            self._give(self.socket_dir)

        with open(self.log_path, "ab") as log:
            p = self._run_as_owner(
                [os.path.join(self.bindir, "initdb"), "-D", self.data_dir, "-U", "postgres",
                 "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
                 "--no-instructions"], stdout=log, stderr=subprocess.STDOUT)
            if p.wait() != 0:
                raise RuntimeError("initdb failed:\n" + self._log_tail())
        atexit.register(self.stop)
        for attempt in range(5):
            self.port = _free_port()
            if self._start_postgres():
                return self
            # Another process took the port between our probe and the bind: try another.
            if "could not bind" not in self._log_tail() and "Address already" not in \
                    self._log_tail():
                break
        raise RuntimeError("postgres did not start:\n" + self._log_tail())

    def _start_postgres(self):
        log = open(self.log_path, "ab")
        try:
            self.proc = self._run_as_owner(
                [os.path.join(self.bindir, "postgres"), "-D", self.data_dir,
                 "-k", self.socket_dir, "-h", "127.0.0.1", "-p", str(self.port),
                 # A test server: durability off, small, quick to stop.
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200",
                 "-c", "shared_buffers=32MB", "-c", "log_min_messages=warning",
                 "-c", "unix_socket_permissions=0777"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            r = subprocess.run([os.path.join(self.bindir, "pg_isready"), "-q", "-h",
                                self.socket_dir, "-p", str(self.port), "-U", "postgres"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                return True
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("postgres not ready after 60 s:\n" + self._log_tail())

    def stop(self):
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGINT)  # fast shutdown: roll back, disconnect, stop
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for d in self._owned_dirs:
            shutil.rmtree(d, ignore_errors=True)
        self._owned_dirs = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def _log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    # -- use --

    @property
    def url(self):
        return self.url_for("postgres")

    @property
    def socket_url(self):
        return "postgresql://postgres@/postgres?host=%s&port=%d" % (self.socket_dir, self.port)

    def url_for(self, database):
        return "postgresql://postgres@127.0.0.1:%d/%s" % (self.port, database)

    def psql(self, sql, database="postgres"):
        r = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-q", "-A", "-t",
                            "-v", "ON_ERROR_STOP=1", "-h", self.socket_dir, "-p", str(self.port),
                            "-U", "postgres", "-d", database, "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError("psql %r failed: %s" % (sql, r.stderr.strip()))
        return r.stdout

    def new_database(self, name):
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError("database name %r: use [a-z_][a-z0-9_]*, at most 63 bytes" % name)
        self.psql('CREATE DATABASE "%s"' % name)
        return self.url_for(name)
