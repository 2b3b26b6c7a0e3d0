"""Shared fixtures for the integration suites: the built binaries, a run() helper that logs
each command, and an nginx serving a per-test folder on 127.0.0.1 (a free port, its own
configuration, pid file and logs; never the distribution's service)."""

import os
import subprocess
import urllib.request

import pytest

from servers import Nginx, free_port  # noqa: F401 (re-exported for the suites)

BUILD_DIR = os.environ.get("OTTER_BUILD_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
BUILD_DIR = os.path.abspath(BUILD_DIR)
SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# The binaries under test are an AddressSanitizer build (meson sets this in build-asan).
SANITIZED = os.environ.get("OTTER_SANITIZED") == "1"

# libfaketime (LD_PRELOAD) and AddressSanitizer both interpose libc and deadlock together;
# tests that shift the clock run in the plain build only.
needs_faketime = pytest.mark.skipif(
    SANITIZED, reason="libfaketime deadlocks with AddressSanitizer; run in the plain build")


def binary(name):
    """Path of a built program (build/<name> or build/**/<name>)."""
    direct = os.path.join(BUILD_DIR, name)
    if os.path.exists(direct):
        return direct
    for root, _dirs, files in os.walk(BUILD_DIR):
        if name in files:
            return os.path.join(root, name)
    raise FileNotFoundError(f"{name} not built in {BUILD_DIR}")


def run(cmd, check=None, env=None, input=None, timeout=120, cwd=None):
    """Runs cmd (a list), logs it, returns (stdout, stderr, returncode). check=True asserts
    success, check=False asserts failure."""
    print("$ " + " ".join(str(c) for c in cmd))
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=full_env,
                       input=input, timeout=timeout, cwd=cwd)
    if p.stdout:
        print(p.stdout.rstrip())
    if p.stderr:
        print(p.stderr.rstrip())
    if check is True:
        assert p.returncode == 0, f"{cmd[0]} failed with {p.returncode}: {p.stderr}"
    elif check is False:
        assert p.returncode != 0, f"{cmd[0]} unexpectedly succeeded"
    return p.stdout, p.stderr, p.returncode


@pytest.fixture
def nginx(tmp_path):
    """A fresh nginx for one test, serving tmp_path/www on a free loopback port."""
    server = Nginx(str(tmp_path))
    # nginx logs are buffered per request; small delay is not needed with access_log flush.
    yield server
    server.stop()


def http_get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()
