#!/usr/bin/python3
"""Agent benchmark (never run by the tests): peak RSS and wall time of `otter daemon`
through one update cycle with a 512 MiB image served by nginx on 127.0.0.1, against the
floor `curl URL | tee FILE | openssl dgst -sha256` + `sync FILE` (download, write and hash
once, nothing verified), and the stripped sizes of the programs. With --old-build, that
build's daemon runs in turn with this one (the same machine noise for both). Page caches
are dropped before every run (as root). Figures: median (min-max).

  bench/agent-bench.py [--build build] [--old-build DIR] [--size-mib 512] [--runs 5]

Needs what `make deps` installs, plus GNU time (`apt-get install time`) and binutils'
strip. Peak RSS comes from GNU time around the daemon (a child forked from this Python
process would inherit its memory high-water mark).
"""

import argparse
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
SRC = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
from servers import Nginx  # noqa: E402


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, **kw)


def make_image(path, size):
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(size >> 20):
            f.write(block[:4096] + os.urandom(64) + block[4160:])


def setup(work, build, size):
    repo_tool = os.path.join(build, "otter-repo")
    nginx = Nginx(work)
    repo = os.path.join(nginx.root, "repo")
    keys = os.path.join(work, "keys")
    sh(repo_tool, "init", "--repo", repo, "--keys-dir", keys, "-q")
    img = os.path.join(work, "rootfs.img")
    make_image(img, size)
    sh(repo_tool, "add-release", "--repo", repo, "--compatible", "bench", "--version", "2",
       "--image", f"rootfs={img}", "-q")
    sh(repo_tool, "publish", "--repo", repo, "--key", os.path.join(keys, "targets-1.pem"), "-q")
    os.unlink(img)
    return nginx, repo


def make_device(work, nginx, repo, size):
    d = tempfile.mkdtemp(dir=work, prefix="device-")
    for s in ("a", "b"):
        with open(os.path.join(d, f"slot-{s}.img"), "wb") as f:
            f.truncate(size + (64 << 20))
    grubenv = os.path.join(d, "grubenv")
    sh("grub-editenv", grubenv, "create")
    with open(os.path.join(d, "cmdline"), "w") as f:
        f.write("quiet otter.slot=A\n")
    with open(os.path.join(d, "os-release"), "w") as f:
        f.write("VERSION_ID=1\n")
    shutil.copy(os.path.join(repo, "metadata", "1.root.json"), os.path.join(d, "root.json"))
    conf = os.path.join(d, "system.conf")
    with open(conf, "w") as f:
        f.write(f"""[system]
compatible=bench
bootloader=grub
data-directory={d}/data
cmdline={d}/cmdline
[bootloader]
grubenv={grubenv}
[slot.rootfs.0]
device={d}/slot-a.img
bootname=A
[slot.rootfs.1]
device={d}/slot-b.img
bootname=B
[update]
repository={nginx.url('repo')}
trusted-root={d}/root.json
version-file={d}/os-release
reboot-command=touch {d}/reboot
poll-interval=3600
poll-jitter=0
""")
    return d, conf


def run_daemon(build, d, conf):
    """Starts the daemon under GNU time; returns (seconds until the reboot request, KiB)."""
    rss_file = os.path.join(d, "rss")
    start = time.monotonic()
    t = subprocess.Popen(["/usr/bin/time", "-o", rss_file, "-f", "%M",
                          os.path.join(build, "otter"), "--config", conf, "daemon", "-q"],
                         stderr=subprocess.PIPE, text=True)
    marker = os.path.join(d, "reboot")
    while not os.path.exists(marker):
        if t.poll() is not None:
            raise RuntimeError("daemon ended: " + t.stderr.read())
        if time.monotonic() - start > 600:
            raise RuntimeError("no update within 10 minutes")
        time.sleep(0.05)
    wall = time.monotonic() - start
    # SIGTERM the daemon itself (time does not forward it); time then writes the RSS.
    children = subprocess.run(["pgrep", "-P", str(t.pid)], stdout=subprocess.PIPE,
                              text=True).stdout.split()
    for pid in children:
        os.kill(int(pid), signal.SIGTERM)
    t.wait(30)
    with open(rss_file) as f:
        return wall, int(f.read().split()[-1])


def run_floor(work, url):
    """curl | tee | openssl dgst, then fsync the file: the seconds it takes."""
    out = os.path.join(work, "floor.img")
    start = time.monotonic()
    sh("sh", "-c", f"curl -sf '{url}' | tee '{out}' | openssl dgst -sha256 >/dev/null "
       f"&& sync '{out}'")
    wall = time.monotonic() - start
    os.unlink(out)
    return wall, 0


def drop_caches():
    subprocess.run(["sync"])
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def stripped_sizes(build):
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        # The programs link libotter.so: the device carries otter and the library.
        for prog in ("otter", "otter-repo", "otter-tuf", "libotter.so.0"):
            dst = os.path.join(tmp, prog)
            sh("strip", "-o", dst, os.path.join(build, prog))
            out[prog] = os.path.getsize(dst)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--old-build")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    size = args.size_mib << 20
    builds = {"otter daemon": build}
    if args.old_build:
        builds["otter daemon, old build"] = os.path.abspath(args.old_build)
    with tempfile.TemporaryDirectory(prefix="otter-agent-bench-", dir="/var/tmp") as work:
        nginx, repo = setup(work, build, size)
        tdir = os.path.join(repo, "targets")
        image = max((os.path.join(dp, f) for dp, _, fs in os.walk(tdir) for f in fs),
                    key=os.path.getsize)
        url = nginx.url("repo/targets/" + os.path.relpath(image, tdir))
        runs = {"floor": []}
        runs.update({k: [] for k in builds})
        try:
            for _ in range(args.runs):
                drop_caches()
                runs["floor"].append(run_floor(work, url))
                for label, b in builds.items():  # in turn: the same noise for both
                    d, conf = make_device(work, nginx, repo, size)
                    drop_caches()
                    runs[label].append(run_daemon(b, d, conf))
                    with open(os.path.join(d, "data", "agent.json")) as f:
                        assert json.load(f)["state"] == "pending-reboot"
                    shutil.rmtree(d)
        finally:
            nginx.stop()

    def stat(vals, fmt):
        return (f"{fmt.format(statistics.median(vals))} "
                f"({fmt.format(min(vals))}–{fmt.format(max(vals))})")

    floor = statistics.median(r[0] for r in runs["floor"])
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                   "?")
    print(f"Machine: {os.cpu_count()} CPUs ({cpu}), {platform.platform()}; "
          f"{time.strftime('%Y-%m-%d')}; median (min–max) of {args.runs} runs, in turn; "
          f"{sh('curl', '--version').stdout.split()[1]} curl, "
          f"{sh('openssl', 'version').stdout.split()[1]} OpenSSL, "
          f"{sh('nginx', '-v').stderr.strip()}")
    print()
    print(f"Image: {args.size_mib} MiB, raw, over HTTP from nginx on 127.0.0.1.")
    print()
    print("| what | wall time (s) | MiB/s | floor ÷ time | peak RSS |")
    print("|---|---|---|---|---|")
    rows = [("floor: `curl` piped into `tee FILE` and `openssl dgst -sha256`, then `sync FILE`",
             "floor")]
    rows += [(f"`{k}`: start to reboot request (refresh, download, SHA-256 + SHA-512, "
              f"write, fsync, read-back, activation)", k) for k in builds]
    for label, k in rows:
        walls = [r[0] for r in runs[k]]
        w = statistics.median(walls)
        rss = (f"{statistics.median(r[1] for r in runs[k]) / 1024:.1f} MiB" if k != "floor"
               else "")
        print(f"| {label} | {stat(walls, '{:.2f}')} | {args.size_mib / w:.0f} "
              f"| {floor / w:.2f} | {rss} |")
    print()
    print("| program | stripped size |")
    print("|---|---|")
    for prog, n in stripped_sizes(build).items():
        print(f"| `{prog}` | {n / 1024:.0f} KiB |")


if __name__ == "__main__":
    main()
