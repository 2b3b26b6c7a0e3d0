#!/usr/bin/python3
"""Refresh benchmark for otter-tuf (never run by the tests).

Generates two repositories with 50,000 targets each and serves them with nginx on
127.0.0.1:
  flat: every target in the top-level targets metadata;
  bins: the targets spread over 256 hash-bin delegations (path_hash_prefixes "00".."ff").
For each, measures a cold `init` + `refresh` + one `download` (wall time and peak RSS of
each otter-tuf process, from wait4()), the median of several runs.

  bench/refresh-bench.py [--build build] [--targets 50000] [--runs 5]

Needs nginx, python3-cryptography, python3-securesystemslib (make deps) and GNU time
(`apt-get install time`).
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
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


def timed(cmd):
    """Wall time and peak RSS of cmd. GNU time (Debian package "time") reports the RSS: a
    child forked from this (large) Python process would inherit its high-water mark."""
    with tempfile.NamedTemporaryFile("r") as out:
        start = time.monotonic()
        p = subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%M", *cmd],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.monotonic() - start
        if p.returncode != 0:
            raise RuntimeError(f"{cmd} failed: {p.stderr.decode()}")
        return wall, int(out.read().split()[-1])  # seconds, KiB


def measure(exe, nginx, name, root_bytes, target, tmp):
    md = os.path.join(tmp, "md")
    td = os.path.join(tmp, "td")
    shutil.rmtree(md, ignore_errors=True)
    shutil.rmtree(td, ignore_errors=True)
    rootfile = os.path.join(tmp, "root.json")
    with open(rootfile, "wb") as f:
        f.write(root_bytes)
    murl = nginx.url(f"{name}/metadata/")
    turl = nginx.url(f"{name}/targets/")
    w1, r1 = timed([exe, "-q", "--metadata-dir", md, "init", rootfile])
    w2, r2 = timed([exe, "-q", "--metadata-dir", md, "--metadata-url", murl, "refresh"])
    w3, r3 = timed([exe, "-q", "--metadata-dir", md, "--metadata-url", murl,
                    "--target-base-url", turl, "--target-dir", td, "--target-name", target,
                    "download"])
    return {"init": (w1, r1), "refresh": (w2, r2), "download": (w3, r3),
            "total_wall": w1 + w2 + w3, "peak_rss": max(r1, r2, r3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--targets", type=int, default=50000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    exe = os.path.abspath(os.path.join(args.build, "otter-tuf"))

    with tempfile.TemporaryDirectory(prefix="otter-bench-") as tmp:
        nginx = Nginx(tmp)
        try:
            results = {}
            for name, builder in (("flat", build_flat), ("bins", build_bins)):
                t0 = time.monotonic()
                repo, target = builder(os.path.join(nginx.root, name), args.targets)
                gen = time.monotonic() - t0
                sizes = {"targets.json": len(repo.serialise("targets"))}
                client_dir = os.path.join(tmp, "client-" + name)
                os.makedirs(client_dir)
                runs = [measure(exe, nginx, name, repo.published["1.root.json"], target,
                                client_dir) for _ in range(args.runs)]
                results[name] = (runs, sizes, gen)
        finally:
            nginx.stop()

    def med(runs, key, idx=None):
        vals = [r[key][idx] if idx is not None else r[key] for r in runs]
        return statistics.median(vals)

    lines = []
    lines.append(f"Machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
                 f"{platform.platform()}; date {time.strftime('%Y-%m-%d')}; "
                 f"{args.targets} targets; median of {args.runs} runs.")
    lines.append("")
    lines.append("| repository | targets.json | init | refresh | download | total wall "
                 "| peak RSS |")
    lines.append("|---|---|---|---|---|---|---|")
    for name, (runs, sizes, gen) in results.items():
        label = {"flat": f"{args.targets} targets in top-level targets",
                 "bins": f"{args.targets} targets over 256 hash-bin delegations"}[name]
        lines.append(
            f"| {label} | {sizes['targets.json'] / 1e6:.2f} MB "
            f"| {med(runs, 'init', 0) * 1000:.0f} ms "
            f"| {med(runs, 'refresh', 0) * 1000:.0f} ms "
            f"| {med(runs, 'download', 0) * 1000:.0f} ms "
            f"| {med(runs, 'total_wall') * 1000:.0f} ms "
            f"| {med(runs, 'peak_rss') / 1024:.1f} MiB |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
