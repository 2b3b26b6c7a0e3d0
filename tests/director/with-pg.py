#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs a command with a throw-away PostgreSQL server (for meson tests of C programs).

    with-pg.py [--keep] -- COMMAND [ARG...]

Starts a PgServer (pg.py) in a temporary folder, exports OTTER_TEST_PG_URL (a libpq URI of
its "postgres" database over 127.0.0.1), runs COMMAND, stops the server (also when COMMAND
fails or the wrapper is terminated, e.g. by a meson timeout) and exits with COMMAND's status.
--keep leaves the folder (server log: postgres.log) for debugging.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg import PgServer  # noqa: E402


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv):
    keep = False
    if "--" not in argv:
        sys.stderr.write("usage: with-pg.py [--keep] -- COMMAND [ARG...]\n")
        return 2
    i = argv.index("--")
    for a in argv[:i]:
        if a == "--keep":
            keep = True
        else:
            sys.stderr.write("with-pg.py: unknown option %r\n" % a)
            return 2
    cmd = argv[i + 1:]
    if not cmd:
        sys.stderr.write("with-pg.py: no command after --\n")
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    base = tempfile.mkdtemp(prefix="otter-test-pg-")
    server = PgServer(base)
    try:
        server.start()
        env = dict(os.environ, OTTER_TEST_PG_URL=server.url)
        return subprocess.call(cmd, env=env)
    finally:
        server.stop()
        if keep:
            sys.stderr.write("with-pg.py: kept %s\n" % base)
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
