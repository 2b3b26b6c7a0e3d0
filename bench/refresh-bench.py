#!/usr/bin/python3
"""TUF client benchmark: otter-tuf against its peers in the same run (never run by the tests).

Generates repositories and serves them with nginx on 127.0.0.1:
  flat-N: N targets in the top-level targets metadata (N from --sizes);
  bins:   the largest N spread over 256 hash-bin delegations (path_hash_prefixes "00".."ff").
For each, every client does a cold init + refresh + one download: otter-tuf (this build, and
with --old-build the build of another revision, run in turn with it so that both see the same
machine noise), python-tuf (the conformance suite's reference client, same command line) and
tuf-js (tests/integration/tufjs-client.js: one node process refreshes and downloads). Reports
the median and min-max over the runs of the total wall time and of the peak RSS of the
processes, and prints machine and versions.

  bench/refresh-bench.py [--build build] [--old-build DIR] [--sizes 1000,10000,50000]
                         [--runs 5] [--python-tuf CLIENT] [--tufjs NODE_MODULES]

python-tuf: run /work/shared/tools/tuf-conformance/setup.sh first (its reference client, by
default $TUFCONF_WORK/clients/python-tuf-reference). tuf-js: `npm install --prefix
build/npm-tufjs tuf-js@5.0.1` (what tests/integration/test_repo_tufjs.py does). A peer that is
missing is left out of the table. Needs nginx, python3-cryptography, python3-securesystemslib
(make deps) and GNU time (`apt-get install time`).
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from servers import Nginx  # noqa: E402
from tufrepo import Key, Repository  # noqa: E402


def fake_entry(i):
    data = f"artifact {i}".encode()
    return {"length": len(data), "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}


def build_flat(path, n):
    repo = Repository(path)
    repo.snapshot_hashes = repo.timestamp_hashes = True
    t = repo.signed["targets"]["targets"]
    for i in range(n):
        t[f"packages/pkg-{i:06d}.tar.gz"] = fake_entry(i)
    repo.add_target("packages/pkg-000042.tar.gz", b"artifact 42")
    repo.update("targets")
    return repo, "packages/pkg-000042.tar.gz"


def build_bins(path, n):
    repo = Repository(path)
    repo.snapshot_hashes = repo.timestamp_hashes = True
    key = Key()
    names = []
    for b in range(256):
        name = f"bin-{b:02x}"
        names.append(name)
        repo.add_delegation("targets", name, prefixes=[f"{b:02x}"], keys=[key])
    for i in range(n):
        p = f"packages/pkg-{i:06d}.tar.gz"
        prefix = hashlib.sha256(p.encode()).hexdigest()[:2]
        repo.signed[f"bin-{prefix}"]["targets"][p] = fake_entry(i)
    target = "packages/pkg-000042.tar.gz"
    prefix = hashlib.sha256(target.encode()).hexdigest()[:2]
    repo.add_target(target, b"artifact 42", role=f"bin-{prefix}")
    repo.update(*names, "targets")
    return repo, target


TIMEOUT = 120  # seconds per process (--timeout)


def timed(cmd, env=None):
    """Wall time and peak RSS of cmd. GNU time (Debian package "time") reports the RSS: a
    child forked from this (large) Python process would inherit its high-water mark."""
    with tempfile.NamedTemporaryFile("r") as out:
        start = time.monotonic()
        # A session of its own: on a timeout the client goes too, not only GNU time.
        p = subprocess.Popen(["/usr/bin/time", "-o", out.name, "-f", "%M", *cmd],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                             start_new_session=True)
        try:
            _, err = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            raise
        wall = time.monotonic() - start
        if p.returncode != 0:
            raise RuntimeError(f"{cmd} failed: {err.decode()}")
        return wall, int(out.read().split()[-1])  # seconds, KiB


def fresh(tmp, root_bytes):
    md = os.path.join(tmp, "md")
    td = os.path.join(tmp, "td")
    shutil.rmtree(md, ignore_errors=True)
    shutil.rmtree(td, ignore_errors=True)
    os.makedirs(md)
    os.makedirs(td)
    rootfile = os.path.join(tmp, "root.json")
    with open(rootfile, "wb") as f:
        f.write(root_bytes)
    return md, td, rootfile


def measure_cli(cmd, nginx, name, root_bytes, target, tmp):
    """A client with the conformance command line (otter-tuf, python-tuf): three processes."""
    md, td, rootfile = fresh(tmp, root_bytes)
    murl = nginx.url(f"{name}/metadata/")
    turl = nginx.url(f"{name}/targets/")
    w1, r1 = timed([*cmd, "--metadata-dir", md, "init", rootfile])
    w2, r2 = timed([*cmd, "--metadata-dir", md, "--metadata-url", murl, "refresh"])
    w3, r3 = timed([*cmd, "--metadata-dir", md, "--metadata-url", murl,
                    "--target-base-url", turl, "--target-dir", td, "--target-name", target,
                    "download"])
    return {"wall": w1 + w2 + w3, "rss": max(r1, r2, r3), "refresh": w2, "download": w3}


def measure_tufjs(node_modules, nginx, name, root_bytes, target, tmp):
    md, td, rootfile = fresh(tmp, root_bytes)
    client = os.path.join(HERE, "..", "tests", "integration", "tufjs-client.js")
    env = dict(os.environ, NODE_PATH=node_modules, NODE_NO_WARNINGS="1")
    w, r = timed(["node", client, nginx.url(f"{name}/metadata/"),
                  nginx.url(f"{name}/targets/"), md, td, rootfile, target], env=env)
    return {"wall": w, "rss": r, "refresh": None, "download": None}


def version_of(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "?"


def main():
    global TIMEOUT
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--old-build", help="another otter build to pair with this one")
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--python-tuf", default=os.path.join(
        os.environ.get("TUFCONF_WORK", "/tmp/tuf-conformance-work"), "clients",
        "python-tuf-reference"))
    ap.add_argument("--timeout", type=int, default=120,
                    help="seconds a client process may take; a client that takes longer is "
                         "reported as such and not run on larger repositories")
    ap.add_argument("--tufjs", default=os.path.join(HERE, "..", "build", "npm-tufjs",
                                                    "node_modules"))
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    TIMEOUT = args.timeout

    clients = {"otter-tuf": lambda *a: measure_cli(
        [os.path.abspath(os.path.join(args.build, "otter-tuf")), "-q"], *a)}
    if args.old_build:
        clients["otter-tuf (old build)"] = lambda *a: measure_cli(
            [os.path.abspath(os.path.join(args.old_build, "otter-tuf")), "-q"], *a)
    versions = [f"otter-tuf: {os.path.abspath(args.build)} "
                f"({version_of(['git', '-C', HERE, 'rev-parse', '--short', 'HEAD'])})"]
    if args.old_build:
        versions.append(f"otter-tuf (old build): {os.path.abspath(args.old_build)}")
    if os.access(args.python_tuf, os.X_OK):
        clients["python-tuf"] = lambda *a: measure_cli([args.python_tuf], *a)
        vfile = os.path.join(os.path.dirname(os.path.dirname(args.python_tuf)), "versions.txt")
        pyver = "?"
        if os.path.exists(vfile):
            with open(vfile) as f:
                pyver = " ".join(next((ln.split()[1:3] for ln in f
                                       if ln.startswith("python-tuf")), ["?"]))
        versions.append(f"python-tuf {pyver} (tuf-conformance reference client)")
    if os.path.isdir(os.path.join(args.tufjs, "tuf-js")):
        clients["tuf-js"] = lambda *a: measure_tufjs(args.tufjs, *a)
        with open(os.path.join(args.tufjs, "tuf-js", "package.json")) as f:
            versions.append(f"tuf-js {json.load(f)['version']} on Node.js "
                            f"{version_of(['node', '--version'])}")

    with tempfile.TemporaryDirectory(prefix="otter-bench-") as tmp:
        nginx = Nginx(tmp)
        try:
            results = {}
            too_slow = {}  # client -> the size at which it took longer than TIMEOUT
            repos = [(f"flat-{n}", build_flat, n) for n in sizes]
            repos.append(("bins", build_bins, max(sizes)))
            for name, builder, n in repos:
                repo, target = builder(os.path.join(nginx.root, name), n)
                size = len(repo.serialise("targets"))
                runs = {c: [] for c in clients}
                for _ in range(args.runs):
                    for c, fn in clients.items():  # in turn: the same noise for all
                        if c in too_slow and name.startswith("flat"):
                            continue  # a larger flat repository than one it was too slow for
                        d = os.path.join(tmp, "client", name, c.replace(" ", "_"))
                        os.makedirs(d, exist_ok=True)
                        try:
                            runs[c].append(fn(nginx, name, repo.published["1.root.json"],
                                              target, d))
                        except subprocess.TimeoutExpired:
                            too_slow.setdefault(c, n)
                results[name] = (n, size, runs)
        finally:
            nginx.stop()

    def stat(vals, scale, fmt):
        vals = [v * scale for v in vals]
        return (f"{fmt.format(statistics.median(vals))} "
                f"({fmt.format(min(vals))}–{fmt.format(max(vals))})")

    lines = []
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    lines.append(f"Machine: {os.cpu_count()} CPUs ({cpu}), {platform.platform()}; "
                 f"{time.strftime('%Y-%m-%d')}; median (min–max) of {args.runs} runs, "
                 f"clients in turn within each run.")
    lines.append("Versions: " + "; ".join(versions) + ".")
    lines.append("")
    lines.append("| repository | targets.json | client | init + refresh + download | "
                 "peak RSS | vs python-tuf |")
    lines.append("|---|---|---|---|---|---|")
    for name, (n, size, runs) in results.items():
        label = (f"{n:,} targets, flat" if name.startswith("flat")
                 else f"{n:,} targets, 256 hash bins")
        ref = (statistics.median([r["wall"] for r in runs["python-tuf"]])
               if "python-tuf" in runs else None)
        for c, rs in runs.items():
            if not rs:
                lines.append(f"| {label} | {size / 1048576:.2f} MiB | {c} "
                             f"| more than {TIMEOUT} s (from {too_slow[c]:,} targets on: "
                             f"not run) | | |")
                continue
            walls = [r["wall"] for r in rs]
            speed = (f"{ref / statistics.median(walls):.1f}× faster" if ref and
                     c != "python-tuf" else "")
            lines.append(f"| {label} | {size / 1048576:.2f} MiB | {c} "
                         f"| {stat(walls, 1000, '{:.0f}')} ms "
                         f"| {stat([r['rss'] for r in rs], 1 / 1024, '{:.1f}')} MiB | {speed} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
