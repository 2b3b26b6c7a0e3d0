#!/usr/bin/python3
"""otter-director benchmark (docs/performance.md; the tests only run it with --quick).

For each engine (SQLite, then PostgreSQL started with tests/director/pg.py):
  1. a simulated fleet made fast with bulk SQL into the migrated schema: --devices devices
     (default 100,000 on SQLite, 1,000,000 on PostgreSQL), each with one primary ECU. Only the
     --polling devices that poll in the run (default 1,000) get REAL ed25519 keys; the others
     get a unique placeholder key id (sha256 of "placeholder:<n>") and a throw-away public
     key, so they are registered rows but can never authenticate;
  2. otter-director serving it on 127.0.0.1, and nginx serving a static file of the same
     size as a device's timestamp.json (the ceiling);
  3. "nothing changed" polls: bench/director-load (built by meson) with --connections
     keep-alive clients, each request signed by its device's key, If-None-Match with the
     device's ETag. Warm-up (every polling device fetches its metadata, so it exists), then
     --runs runs of --seconds against the director and nginx alternately; median and min-max;
  4. `otter-director rollout create` to --rollout-devices devices (one phase, 100%), timed as
     a process, then the first poll of the polling devices after it (director-load --once:
     each polls timestamp.json once, which regenerates and signs its targets, snapshot and
     timestamp), and a check that no metadata was made for devices that did not poll.

  bench/director-bench.py [--build build] [--engines sqlite,postgresql] [--runs 3]
                          [--seconds 10] [--connections 64] [--threads N] [--quick]
                          [--write-doc]

--quick: a few hundred devices and sub-second runs (what tests/director/test_director_bench.py
runs to keep this script working; timings then mean nothing). --write-doc replaces the
section "otter-director" of docs/performance.md with the figures. Needs what `make deps`
installs (nginx, postgresql, python3-cryptography) and a built tree.
"""

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "director"))
from client import Key, signature_header  # noqa: E402
from pg import PgServer  # noqa: E402

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
TS_PATH = "/director/v1/metadata/timestamp.json"
HWID = "bench-hw"
ROLLOUT_TAG = "bench-rollout"

NGINX_CONF = """
{user}
daemon off;
worker_processes {workers};
pid {state}/nginx.pid;
error_log {state}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path {state}/body;
    proxy_temp_path {state}/proxy;
    fastcgi_temp_path {state}/fastcgi;
    uwsgi_temp_path {state}/uwsgi;
    scgi_temp_path {state}/scgi;
    types {{ application/json json; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(*cmd, **kw):
    p = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(str(c) for c in cmd)} failed ({p.returncode}):\n"
                           f"{p.stdout}{p.stderr}")
    return p.stdout


def find_binary(build, name):
    for root, _dirs, files in os.walk(build):
        if name in files:
            return os.path.join(root, name)
    raise SystemExit(f"{name} not built in {build}: run ninja -C {build}")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    def __init__(self, base, body, workers):
        self.state = os.path.join(base, "nginx")
        self.root = os.path.join(self.state, "www")
        # The same path as the director's, so that the requests are the same bytes.
        folder = os.path.join(self.root, os.path.dirname(TS_PATH).lstrip("/"))
        os.makedirs(folder)
        with open(os.path.join(folder, "timestamp.json"), "wb") as f:
            f.write(body)
        self.port = free_port()
        conf = os.path.join(self.state, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(user="user root root;" if os.getuid() == 0 else "",
                                      workers=workers, state=self.state, port=self.port,
                                      root=self.root))
        self.proc = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", conf,
                                      "-p", self.state, "-e",
                                      os.path.join(self.state, "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "nginx")

    def version(self):
        p = subprocess.run([shutil.which("nginx") or "/usr/sbin/nginx", "-v"],
                           capture_output=True, text=True)
        return p.stderr.strip().split("/")[-1]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def wait_port(port, proc, what):
    import socket
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited ({proc.returncode})")
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


class Bench:
    def __init__(self, args, tmp):
        self.a = args
        self.tmp = tmp
        self.director = find_binary(args.build, "otter-director")
        self.repo_bin = find_binary(args.build, "otter-repo")
        self.load = find_binary(args.build, "director-load")
        self.results = {}

    # ---- set-up shared by the engines ----

    def ceremony(self):
        base = os.path.join(self.tmp, "ceremony")
        self.keys = os.path.join(base, "keys")
        sh(self.repo_bin, "init", "--repo", os.path.join(base, "offline"), "--keys-dir",
           self.keys, "-q")
        self.root = os.path.join(base, "offline", "metadata", "1.root.json")
        # The image repository the rollout's target comes from.
        img = os.path.join(self.tmp, "image")
        self.image_repo = os.path.join(img, "repo")
        self.image_trusted = os.path.join(img, "trusted")
        sh(self.repo_bin, "init", "--repo", self.image_repo, "--keys-dir",
           os.path.join(img, "keys"), "-q")
        os.makedirs(self.image_trusted)
        shutil.copy(os.path.join(self.image_repo, "metadata", "1.root.json"),
                    os.path.join(self.image_trusted, "root.json"))
        with open(os.path.join(img, "rootfs.img"), "wb") as f:
            f.write(os.urandom(4096))
        sh(self.repo_bin, "add-release", "--repo", self.image_repo, "--compatible", "bench",
           "--version", "2.0", "--image", f"rootfs={os.path.join(img, 'rootfs.img')}", "-q")
        sh(self.repo_bin, "publish", "--repo", self.image_repo, "--key",
           os.path.join(img, "keys", "targets-1.pem"), "-q")
        self.target = "releases/bench/2.0.json"
        # The devices that poll: real keys, one PEM file each, listed for director-load.
        self.pollers = []
        kdir = os.path.join(self.tmp, "device-keys")
        os.makedirs(kdir)
        from cryptography.hazmat.primitives import serialization
        with open(os.path.join(self.tmp, "keys.txt"), "w") as lst:
            for i in range(self.a.polling):
                k = Key()
                path = os.path.join(kdir, f"{i}.pem")
                with open(path, "wb") as f:
                    f.write(k.priv.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
                lst.write(f"{k.keyid} {path}\n")
                self.pollers.append(k)
        self.keys_list = os.path.join(self.tmp, "keys.txt")
        self.placeholder_pem = Key().pem

    def conf(self, engine, url):
        path = os.path.join(self.tmp, f"{engine}.conf")
        token = os.path.join(self.tmp, "admin-token")
        with open(token, "w") as f:
            f.write(ADMIN_TOKEN + "\n")
        with open(path, "w") as f:
            f.write("[database]\n"
                    f"url = {url}\n"
                    "[server]\n"
                    f"threads = {self.a.threads}\n"
                    "[keys]\n"
                    f"targets = {self.keys}/targets-1.pem\n"
                    f"snapshot = {self.keys}/snapshot-1.pem\n"
                    f"timestamp = {self.keys}/timestamp-1.pem\n"
                    "[admin]\n"
                    f"token-file = {token}\n"
                    "[image-repository]\n"
                    f"metadata-url = file://{self.image_repo}/metadata/\n"
                    f"metadata-dir = {self.image_trusted}\n")
        return path

    def cli(self, conf, *args):
        return sh(self.director, "--config", conf, *args)

    @staticmethod
    def dev_id(i):
        return f"dev-{i:07d}"

    # ---- the fleet, by bulk SQL ----

    def fleet_rows(self, n):
        """(device id, serial, key id, PEM) of every device; the first --polling are real."""
        for i in range(n):
            d = self.dev_id(i)
            if i < len(self.pollers):
                k = self.pollers[i]
                yield d, d + "-main", k.keyid, k.pem
            else:
                kid = hashlib.sha256(f"placeholder:{i}".encode()).hexdigest()
                yield d, d + "-main", kid, self.placeholder_pem

    def fill_sqlite(self, path, n, tagged, now):
        con = sqlite3.connect(path)
        con.execute("PRAGMA synchronous=OFF")
        with con:
            con.executemany("INSERT INTO devices (id, created, assign_gen) VALUES (?, ?, 0)",
                            ((self.dev_id(i), now) for i in range(n)))
            con.executemany("INSERT INTO ecus (serial, device_id, hardware_id, is_primary, "
                            "key_type, public_key, keyid) VALUES (?, ?, ?, 1, 'ed25519', ?, ?)",
                            ((s, d, HWID, pem, kid) for d, s, kid, pem in self.fleet_rows(n)))
            con.executemany("INSERT INTO device_tags (device_id, tag) VALUES (?, ?)",
                            ((self.dev_id(i), ROLLOUT_TAG) for i in range(tagged)))
        con.execute("ANALYZE")
        con.close()

    def fill_pg(self, pg, db, n, tagged, now):
        def q(s):
            return "'" + s.replace("'", "''") + "'"
        # Placeholders entirely server-side (generate_series); the real ones as VALUES.
        pg.psql(f"INSERT INTO devices (id, created, assign_gen) SELECT 'dev-' || "
                f"lpad(i::text, 7, '0'), {now}, 0 FROM generate_series(0, {n - 1}) i", db)
        np = len(self.pollers)
        pg.psql("INSERT INTO ecus (serial, device_id, hardware_id, is_primary, key_type, "
                "public_key, keyid) SELECT 'dev-' || lpad(i::text, 7, '0') || '-main', "
                f"'dev-' || lpad(i::text, 7, '0'), '{HWID}', 1, 'ed25519', "
                f"{q(self.placeholder_pem)}, encode(sha256(('placeholder:' || i)::bytea), "
                f"'hex') FROM generate_series({np}, {n - 1}) i", db)
        real = list(self.fleet_rows(np))
        for i in range(0, np, 200):  # one psql argument holds at most 128 KiB
            rows = ",".join(f"({q(s)}, {q(d)}, '{HWID}', 1, 'ed25519', {q(pem)}, {q(kid)})"
                            for d, s, kid, pem in real[i:i + 200])
            pg.psql("INSERT INTO ecus (serial, device_id, hardware_id, is_primary, key_type, "
                    f"public_key, keyid) VALUES {rows}", db)
        pg.psql(f"INSERT INTO device_tags (device_id, tag) SELECT 'dev-' || "
                f"lpad(i::text, 7, '0'), '{ROLLOUT_TAG}' FROM generate_series(0, "
                f"{tagged - 1}) i", db)
        pg.psql("VACUUM ANALYZE", db)

    # ---- servers and load ----

    def start_director(self, conf):
        port_file = os.path.join(self.tmp, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.dlog = open(os.path.join(self.tmp, "director.log"), "ab")
        proc = subprocess.Popen([self.director, "--config", conf, "serve", "--listen",
                                 "127.0.0.1:0", "--port-file", port_file],
                                stdout=self.dlog, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not os.path.exists(port_file):
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("otter-director did not start: see director.log")
            time.sleep(0.02)
        return proc, int(open(port_file).read())

    def timestamp_body(self, port):
        import urllib.request
        k = self.pollers[0]
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}{TS_PATH}",
            headers={"Otter-Signature": signature_header(k, "GET", TS_PATH, b"")})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def run_load(self, port, seconds, keys=True, once=False, servers=()):
        """One director-load run; with servers (process ids), also the CPU time those
        process trees and director-load used, per answered request (the untimed priming
        polls, one per device, included)."""
        cmd = [self.load, "--port", str(port), "--path", TS_PATH, "--connections",
               str(self.a.connections), "--seconds", str(seconds)]
        if keys:
            cmd += ["--keys", self.keys_list]
        if once:
            cmd += ["--once"]
        c0 = sum(tree_cpu(p) for p in servers)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = json.loads(sh(*cmd))
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        c1 = sum(tree_cpu(p) for p in servers)
        if out["errors"]:
            raise RuntimeError(f"director-load saw errors: {out}")
        polls = out["requests"] + (0 if once else (len(self.pollers) if keys else
                                                    self.a.connections))
        out["server_cpu_us"] = (c1 - c0) / polls * 1e6 if servers else None
        out["client_cpu_us"] = ((r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) /
                                polls * 1e6)
        return out

    def polls(self, port, nginx_port, director_pids, nginx_pid):
        log(f"  warm-up ({self.a.warmup} s each)")
        self.run_load(port, self.a.warmup)
        self.run_load(nginx_port, self.a.warmup, keys=False)
        d, n = [], []
        for i in range(self.a.runs):
            d.append(self.run_load(port, self.a.seconds, servers=director_pids))
            n.append(self.run_load(nginx_port, self.a.seconds, keys=False,
                                   servers=[nginx_pid]))
            log(f"  run {i + 1}: director {d[-1]['requests_per_second']:.0f}/s p99 "
                f"{d[-1]['p99_ms']:.2f} ms; nginx {n[-1]['requests_per_second']:.0f}/s p99 "
                f"{n[-1]['p99_ms']:.2f} ms")
        assert all(r["status_3xx"] == r["requests"] for r in d), \
            "director polls were not all 304 (nothing changed)"
        return {"director": summarize(d), "nginx": summarize(n)}

    def rollout(self, conf, port, engine, count_metadata, pids):
        log(f"  rollout create to {self.a.rollout_devices} devices")
        t0 = time.monotonic()
        out = self.cli(conf, "rollout", "create", "bench-1", "--target", self.target, "--tag",
                       ROLLOUT_TAG, "--phases", "100%", "--json")
        create_s = time.monotonic() - t0
        st = json.loads(out)
        assigned = sum(p.get("assigned", 0) + p.get("downloading", 0)
                       for p in st.get("phases", [])) if "phases" in st else None
        before = count_metadata()
        first = self.run_load(port, 600, once=True, servers=pids)
        after = count_metadata()
        assert first["status_2xx"] == len(self.pollers), first
        return {"create_s": create_s, "devices": self.a.rollout_devices,
                "assigned": assigned,
                "create_per_device_us": create_s / self.a.rollout_devices * 1e6,
                "first_poll": first,
                "first_poll_per_device_ms": first["seconds"] / first["requests"] * 1e3,
                "metadata_rows_before_first_polls": before,
                "metadata_rows_after_first_polls": after}

    # ---- per engine ----

    def engine_sqlite(self):
        n = self.a.devices_sqlite
        path = os.path.join(self.tmp, "director.db")
        conf = self.conf("sqlite", "sqlite:" + path)
        self.cli(conf, "migrate")
        self.cli(conf, "root", "import", self.root)
        t0 = time.monotonic()
        self.fill_sqlite(path, n, min(self.a.rollout_devices, n), int(time.time()))
        fill_s = time.monotonic() - t0

        def count():
            con = sqlite3.connect(path)
            try:
                return con.execute("SELECT count(*) FROM device_metadata").fetchone()[0]
            finally:
                con.close()
        return self.engine_run("sqlite", conf, n, fill_s, count, sqlite3.sqlite_version)

    def engine_pg(self):
        n = self.a.devices_pg
        pg = PgServer(os.path.join(self.tmp, "pg")).start()
        try:
            url = pg.new_database("director_bench")
            conf = self.conf("postgresql", url)
            self.cli(conf, "migrate")
            self.cli(conf, "root", "import", self.root)
            t0 = time.monotonic()
            self.fill_pg(pg, "director_bench", n, min(self.a.rollout_devices, n),
                         int(time.time()))
            fill_s = time.monotonic() - t0

            def count():
                return int(pg.psql("SELECT count(*) FROM device_metadata",
                                   "director_bench").strip())
            version = pg.psql("SHOW server_version").strip()
            return self.engine_run("postgresql", conf, n, fill_s, count, version,
                                   db_pid=pg.proc.pid)
        finally:
            pg.stop()

    def engine_run(self, engine, conf, n, fill_s, count, version, db_pid=None):
        log(f"{engine}: {n} devices made in {fill_s:.1f} s")
        proc, port = self.start_director(conf)
        nginx = None
        try:
            body = self.timestamp_body(port)
            nginx = Nginx(os.path.join(self.tmp, engine), body, self.a.nginx_workers)
            res = {"devices": n, "fill_s": fill_s, "version": version,
                   "timestamp_bytes": len(body), "nginx_version": nginx.version()}
            res.update(self.polls(port, nginx.port,
                                  [proc.pid] + ([db_pid] if db_pid else []),
                                  nginx.proc.pid))
            res["ratio_rps"] = (res["director"]["requests_per_second"]["median"] /
                                res["nginx"]["requests_per_second"]["median"])
            res["rollout"] = self.rollout(conf, port, engine, count,
                                          [proc.pid] + ([db_pid] if db_pid else []))
            rss = read_rss(proc.pid)
            res["director_rss_kib"] = rss
        finally:
            if nginx:
                nginx.stop()
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            self.dlog.close()
        return res


TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu(root):
    """CPU seconds (user + system) used so far by process root and its descendants."""
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        procs[int(d)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        if p in procs:
            total += procs[p][1]
            todo += [c for c, (pp, _) in procs.items() if pp == p]
    return total / TICK


def read_rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def summarize(runs):
    out = {}
    for k in ("requests_per_second", "p50_ms", "p99_ms", "max_ms", "server_cpu_us",
              "client_cpu_us"):
        v = [r[k] for r in runs]
        out[k] = {"median": statistics.median(v), "min": min(v), "max": max(v)}
    out["body_bytes"] = runs[-1]["body_bytes"]
    return out


def fmt(s, digits=0):
    m = s["median"]
    f = f"{{:,.{digits}f}}"
    return f"{f.format(m)} ({f.format(s['min'])}–{f.format(s['max'])})"


def markdown(results, a):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    commit = subprocess.run(["git", "-C", SRC, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    lines = [
        "## otter-director",
        "",
        "`bench/director-bench.py` makes a simulated fleet by bulk SQL into the migrated "
        "schema (one primary ECU per device; only the "
        f"{a.polling:,} devices that poll have real ed25519 keys, the others a unique "
        "placeholder key id), serves it with `otter-director serve` "
        f"(`threads = {a.threads}`) and a static file of the same size as a device's "
        "`timestamp.json` with nginx "
        f"({a.nginx_workers} workers, access log off), and loads both with "
        f"`bench/director-load`: {a.connections} keep-alive connections on 127.0.0.1, each "
        "request signed by its device's key (signing is the client's cost, outside the "
        "latency), `If-None-Match` with the device's ETag: every director answer is a "
        "`304`, the \"nothing changed\" poll. The polling devices take turns on the "
        f"connections. {a.runs} runs of {a.seconds} s after a warm-up, alternating director "
        "and nginx; median (min–max).",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} (commit {commit}, `meson setup build`, "
        f"debugoptimized): {os.cpu_count()} cores ({cpu}), load generator on the same "
        "machine.",
        "",
        "| engine | devices | polls/s | p50 ms | p99 ms | server CPU µs/poll | "
        "nginx polls/s | nginx p99 ms | nginx CPU µs/poll | director / nginx |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for eng, r in results.items():
        lines.append(
            f"| {eng} | {r['devices']:,} | "
            f"{fmt(r['director']['requests_per_second'])} | "
            f"{fmt(r['director']['p50_ms'], 2)} | {fmt(r['director']['p99_ms'], 2)} | "
            f"{fmt(r['director']['server_cpu_us'])} | "
            f"{fmt(r['nginx']['requests_per_second'])} | {fmt(r['nginx']['p99_ms'], 2)} | "
            f"{fmt(r['nginx']['server_cpu_us'])} | {r['ratio_rps']:.2f} |")
    lines += ["", "Server CPU: user + system time of otter-director (with PostgreSQL: plus "
              "every PostgreSQL process) or of nginx's processes during a run, divided by the "
              "polls answered. The load generator's own CPU per poll (signing included): " +
              ", ".join(f"{eng} {r['director']['client_cpu_us']['median']:.0f} µs"
                        for eng, r in results.items()) + " against the director, " +
              ", ".join(f"{r['nginx']['client_cpu_us']['median']:.0f} µs"
                        for eng, r in results.items()) + " against nginx."]
    lines += ["", "Rollout to the tagged devices (`otter-director rollout create --phases "
              "100%`, the whole CLI process), then the first poll of each polling device "
              "(`director-load --once`: its `timestamp.json`, for which the server makes and "
              "signs its targets, snapshot and timestamp):", "",
              "| engine | rollout devices | rollout create | per device | first polls "
              "(concurrent) | server CPU per first poll | metadata rows after |",
              "|---|---|---|---|---|---|---|"]
    for eng, r in results.items():
        ro = r["rollout"]
        fp = ro["first_poll"]
        lines.append(
            f"| {eng} | {ro['devices']:,} | {ro['create_s']:.2f} s | "
            f"{ro['create_per_device_us']:.1f} µs | {fp['requests']:,} in "
            f"{fp['seconds']:.2f} s ({fp['requests_per_second']:,.0f}/s, p99 "
            f"{fp['p99_ms']:.1f} ms) | {fp['server_cpu_us'] / 1000:.2f} ms | "
            f"{ro['metadata_rows_after_first_polls']:,} |")
    lines += ["", "Versions: " + ", ".join(
        f"{eng}: {r['version']}" for eng, r in results.items()) +
        f"; nginx {next(iter(results.values()))['nginx_version']}; "
        f"{platform.platform()}. Timestamp file: "
        f"{next(iter(results.values()))['timestamp_bytes']} bytes. Fleet creation: " +
        ", ".join(f"{eng} {r['fill_s']:.1f} s" for eng, r in results.items()) + ".", ""]
    return "\n".join(lines)


def write_doc(text):
    path = os.path.join(SRC, "docs", "performance.md")
    with open(path) as f:
        doc = f.read()
    m = re.search(r"^## otter-director\n.*?(?=^## |\Z)", doc, flags=re.S | re.M)
    marker = "<!-- director-bench figures end -->\n"
    block = text + "\n" + marker
    if m:
        end = doc.find(marker, m.start())
        stop = end + len(marker) if end >= 0 else m.end()
        doc = doc[:m.start()] + block + doc[stop:]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block
    with open(path, "w") as f:
        f.write(doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--engines", default="sqlite,postgresql")
    ap.add_argument("--devices-sqlite", type=int, default=100_000)
    ap.add_argument("--devices-pg", type=int, default=1_000_000)
    ap.add_argument("--rollout-devices", type=int, default=100_000)
    ap.add_argument("--polling", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=4, help="otter-director [server] threads")
    ap.add_argument("--nginx-workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true",
                    help="tiny fleet and short runs: checks that the script works")
    ap.add_argument("--write-doc", action="store_true")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    a = ap.parse_args()
    if a.quick:
        a.devices_sqlite = a.devices_pg = 300
        a.rollout_devices, a.polling, a.connections = 200, 16, 8
        a.seconds, a.warmup, a.runs = 0.5, 0.3, 1
    if a.polling < a.connections or a.rollout_devices < a.polling or min(
            a.devices_sqlite, a.devices_pg) < a.rollout_devices:
        raise SystemExit("need connections <= polling <= rollout-devices <= devices")
    tmp = tempfile.mkdtemp(prefix="director-bench-")
    results = {}
    try:
        b = Bench(a, tmp)
        b.ceremony()
        for eng in a.engines.split(","):
            if eng == "sqlite":
                results["SQLite"] = b.engine_sqlite()
            elif eng == "postgresql":
                results["PostgreSQL"] = b.engine_pg()
            else:
                raise SystemExit(f"unknown engine {eng}")
    finally:
        if a.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    text = markdown(results, a)
    print(text)
    if a.write_doc:
        write_doc(text)


if __name__ == "__main__":
    main()
