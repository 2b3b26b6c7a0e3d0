"""Installs tuf-js (the npm package) once under the build folder for the interoperability
tests (tests/integration/test_repo_tufjs.py, tests/director/test_director_tuf.py): pinned,
run on Node.js 18 and 20, skipped only when the npm registry cannot be reached at all."""

import json
import os
import shutil

import pytest

TUFJS_VERSION = "5.0.1"
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tufjs-client.js")


# npm error codes that mean the registry was not reached at all.
NPM_UNREACHABLE = ("SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
                   "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "CERT_HAS_EXPIRED", "ENOTFOUND",
                   "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH")


def install_tufjs(build_dir, run):
    """(node, NODE_PATH) with tuf-js installed under build_dir; run is the suite's command
    runner (returns stdout, stderr, returncode)."""
    node = os.environ.get("OTTER_NODE") or shutil.which("node") or shutil.which("nodejs")
    npm = shutil.which("npm")
    assert node and npm, "node and npm are missing: 'make deps' installs Debian's nodejs and npm"
    prefix = os.path.join(build_dir, "npm-tufjs")
    pkg = os.path.join(prefix, "node_modules", "tuf-js", "package.json")
    installed = None
    if os.path.exists(pkg):
        with open(pkg) as f:
            installed = json.load(f).get("version")
    if installed != TUFJS_VERSION:
        os.makedirs(prefix, exist_ok=True)
        with open(os.path.join(prefix, "package.json"), "w") as f:
            json.dump({"name": "otter-tufjs-interop", "private": True}, f)
        # npm 9 (Debian bookworm) only warns about tuf-js's declared engines on Node 18; the
        # package works there (checked with Debian's nodejs 18.20.4).
        _, err, rc = run([npm, "install", "--prefix", prefix, "--no-audit", "--no-fund",
                          "--no-save", "--engine-strict=false", "--fetch-retries=1",
                          f"tuf-js@{TUFJS_VERSION}"],
                         timeout=600)
        if rc != 0 and any(code in err for code in NPM_UNREACHABLE):
            # The registry cannot be reached from here (no route, or TLS interception with a
            # CA this machine does not trust): nothing about otter can be learnt. Any other
            # npm failure still fails the test.
            pytest.skip(f"npm registry unreachable from this machine, tuf-js interop not run: "
                        f"{err.strip().splitlines()[0] if err.strip() else 'npm failed'}")
        assert rc == 0, f"npm could not install tuf-js@{TUFJS_VERSION}: {err}"
    out, _, _ = run([node, "--version"], check=True)
    print(f"tuf-js {TUFJS_VERSION} on Node.js {out.strip()}")
    return node, os.path.join(prefix, "node_modules")
