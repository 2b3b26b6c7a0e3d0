# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures of the Uptane device suites: a real otter-director on SQLite (tests/director's
Director class and root ceremony), an image repository made with otter-repo and served by
nginx, and a simulated device (tests/integration's UpdateEnv) whose system.conf has an
[uptane] section pointing at the director."""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "director"))

from servers import Nginx  # noqa: E402

BUILD_DIR = os.path.abspath(os.environ.get("OTTER_BUILD_DIR") or
                            os.path.join(HERE, "..", "..", "build"))
SANITIZED = os.environ.get("OTTER_SANITIZED") == "1"
needs_faketime = pytest.mark.skipif(
    SANITIZED, reason="libfaketime deadlocks with AddressSanitizer; run in the plain build")


def binary(name):
    direct = os.path.join(BUILD_DIR, name)
    if os.path.exists(direct):
        return direct
    for root, _dirs, files in os.walk(BUILD_DIR):
        if name in files:
            return os.path.join(root, name)
    raise FileNotFoundError(f"{name} not built in {BUILD_DIR}")


def run(cmd, check=None, env=None, input=None, timeout=120, cwd=None):
    """Runs cmd, logs it, returns (stdout, stderr, returncode); check True/False asserts."""
    print("$ " + " ".join(str(c) for c in cmd))
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                       env={**os.environ, **(env or {})}, input=input, timeout=timeout, cwd=cwd)
    if p.stdout:
        print(p.stdout.rstrip())
    if p.stderr:
        print(p.stderr.rstrip())
    if check is True:
        assert p.returncode == 0, f"{cmd[0]} failed with {p.returncode}: {p.stderr}"
    elif check is False:
        assert p.returncode != 0, f"{cmd[0]} unexpectedly succeeded"
    return p.stdout, p.stderr, p.returncode


@pytest.fixture(scope="session")
def ceremony(tmp_path_factory):
    from uptanefixture import make_ceremony
    return make_ceremony(tmp_path_factory.mktemp("ceremony"))


@pytest.fixture
def nginx(tmp_path):
    server = Nginx(str(tmp_path / "nginx"))
    yield server
    server.stop()
