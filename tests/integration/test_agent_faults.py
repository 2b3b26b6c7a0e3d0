"""The agent under faults: a proxy that drops or stalls the connection mid-image (resume,
slow-retrieval abort and retry), the agent killed at each state transition (it resumes or
rolls back on restart, and the device always keeps a good slot), and the daemon's systemd
notifications and watchdogs."""

import os
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

from agentfixture import UpdateEnv
from conftest import free_port, needs_faketime, run

IMAGE_SIZE = 1 << 20


class FaultyProxy:
    """Relays 127.0.0.1:port to nginx. The first `faults` responses to requests whose path
    contains `match` are cut ("drop") or frozen ("stall") after `after` bytes."""

    def __init__(self, upstream_port, match="/images/", mode="drop", faults=1, after=300_000):
        self.upstream = upstream_port
        self.match, self.mode, self.faults, self.after = match, mode, faults, after
        self.port = free_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.lock = threading.Lock()
        self.faulted = 0
        self.closed = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.relay, args=(c,), daemon=True).start()

    def relay(self, client):
        up = socket.create_connection(("127.0.0.1", self.upstream))
        sent = 0
        fault = False
        try:
            while True:
                r, _, _ = select.select([client, up], [], [], 30)
                if not r:
                    return
                if client in r:
                    data = client.recv(65536)
                    if not data:
                        return
                    if self.match.encode() in data:
                        with self.lock:
                            if self.faulted < self.faults:
                                self.faulted += 1
                                fault = True
                    up.sendall(data)
                if up in r:
                    data = up.recv(65536)
                    if not data:
                        return
                    if fault and sent + len(data) > self.after:
                        client.sendall(data[:max(0, self.after - sent)])
                        if self.mode == "stall":
                            # Past curl's speed window (about 5 s of average) plus the
                            # agent's slow-timeout (2 s): the agent must give up first.
                            time.sleep(25)
                        return
                    client.sendall(data)
                    sent += len(data)
        except OSError:
            return
        finally:
            client.close()
            up.close()

    def close(self):
        self.closed = True
        self.sock.close()


@pytest.mark.parametrize("mode", ["drop", "stall"])
def test_interrupted_download_resumes(tmp_path, nginx, mode):
    env = UpdateEnv(tmp_path, nginx)
    data = env.release("1.1", size=IMAGE_SIZE)
    proxy = FaultyProxy(nginx.port, mode=mode)
    try:
        env.write_conf(repository=f"http://127.0.0.1:{proxy.port}/repo")
        start = time.monotonic()
        _, err, rc = env.update()
        assert rc == 0, err
        assert proxy.faulted == 1
        assert env.reboot_requested()
        assert env.slot("B", length=IMAGE_SIZE) == data["rootfs"]
        # The second attempt continued where the first stopped (HTTP Range -> 206).
        assert "resuming rootfs at byte" in err
        assert any("/images/" in p and status == 206 for p, status in nginx.requests())
        if mode == "stall":
            assert time.monotonic() - start < 30
            assert "too slow" in err.lower() or "timed out" in err.lower() or \
                "timeout" in err.lower()
    finally:
        proxy.close()


def test_download_gives_up_and_retries_next_cycle(tmp_path, nginx):
    env = UpdateEnv(tmp_path, nginx)
    env.release("1.1", size=IMAGE_SIZE)
    proxy = FaultyProxy(nginx.port, mode="drop", faults=10, after=100_000)
    try:
        env.write_conf(repository=f"http://127.0.0.1:{proxy.port}/repo")
        _, err, rc = env.update()
        assert rc == 1 and "giving up after 3 attempts" in err
        st = env.status()
        assert st["agent"]["state"] == "failed"
        assert st["primary"] == "A" and not env.reboot_requested()
        proxy.faults = 0
        _, _, rc = env.update()
        assert rc == 0 and env.reboot_requested()
    finally:
        proxy.close()


def bootable_is_good(env, good):
    """The slot the bootloader would pick now holds a complete, verified image."""
    pick = env.dev.sim.pick_without_writing()
    assert pick in good, f"the bootloader would boot {pick}, which holds no verified image"
    content = good[pick]
    assert env.slot(pick, length=len(content)) == content


def crash(env, point, *args):
    _, err, rc = env.update(*args, env={"OTTER_TEST_CRASHPOINT": point})
    assert rc == 99, f"crash point {point} was not reached: {err}"


INSTALL_POINTS = ["agent-downloading", "agent-download:3", "agent-download:12",
                  "agent-installing", "agent-pending-reboot", "agent-reboot", "rename:1",
                  "rename:3", "fsync-dir:2"]


@pytest.mark.parametrize("point", INSTALL_POINTS)
def test_crash_during_install_resumes(tmp_path, nginx, point):
    env = UpdateEnv(tmp_path, nginx)
    a_image = env.slot("A")
    data = env.release("1.1", size=IMAGE_SIZE)
    good = {"A": a_image}
    crash(env, point)
    bootable_is_good(env, dict(good, B=data["rootfs"]))
    assert env.slot("A") == a_image      # the booted slot is never touched
    # Restart: the agent finishes the job (reinstalls, or requests the pending reboot).
    _, err, rc = env.update()
    assert rc == 0, err
    assert env.reboot_requested()
    assert env.agent()["state"] == "pending-reboot"
    assert env.reboot() == "B"
    env.update(check=True)
    assert env.agent()["state"] == "confirmed"
    assert env.slot("B", length=IMAGE_SIZE) == data["rootfs"]


@pytest.mark.parametrize("point", ["agent-pending-confirm", "agent-confirmed", "rename:1"])
def test_crash_during_confirmation(tmp_path, nginx, point):
    env = UpdateEnv(tmp_path, nginx)
    data = env.release("1.1", size=IMAGE_SIZE)
    env.update(check=True)
    assert env.reboot_requested()
    assert env.reboot() == "B"
    crash(env, point)
    bootable_is_good(env, {"A": env.slot("A"), "B": data["rootfs"]})
    env.update(check=True)
    st = env.status()
    assert st["agent"]["state"] == "confirmed"
    assert next(s for s in st["slots"] if s["bootname"] == "B")["state"] == "good"


@pytest.mark.parametrize("point", ["agent-rolled-back", "agent-reboot", "rename:2"])
def test_crash_during_rollback(tmp_path, nginx, point):
    env = UpdateEnv(tmp_path, nginx)
    a_image = env.slot("A")
    env.release("1.1", size=IMAGE_SIZE)
    env.update(check=True)
    assert env.reboot_requested()
    assert env.reboot() == "B"
    env.set_healthy(False)
    crash(env, point)
    # Restarting settles it: B is marked bad, the reboot requested, A boots.
    env.update()
    assert env.reboot() == "A"
    env.update(check=True)
    st = env.status()
    assert st["agent"]["state"] == "rolled-back"
    assert "1.1" in st["agent"]["failed-releases"]
    assert env.slot("A") == a_image
    bootable_is_good(env, {"A": a_image})


def test_power_cut_before_reboot_is_requested(tmp_path, nginx):
    env = UpdateEnv(tmp_path, nginx)
    env.release("1.1")
    crash(env, "agent-reboot")
    # The power went out before the reboot command; the device boots the activated slot.
    assert env.reboot() == "B"
    env.update(check=True)
    assert env.agent()["state"] == "confirmed"


def test_confirm_deadline(tmp_path, nginx):
    env = UpdateEnv(tmp_path, nginx)
    # A health check that hangs: the deadline decides.
    with open(env.dev.conf) as f:
        text = f.read()
    text = text.replace(f"health-check=test -e {env.healthy_flag}", "health-check=sleep 30")
    text = text.replace("confirm-deadline=60", "confirm-deadline=10")
    with open(env.dev.conf, "w") as f:
        f.write(text)
    env.release("1.1")
    env.update(check=True)
    assert env.reboot_requested()
    assert env.reboot() == "B"
    start = time.monotonic()
    env.update()
    assert time.monotonic() - start < 20
    agent = env.agent()
    assert agent["state"] == "rolled-back"
    assert "deadline" in agent["last-error"]
    assert env.reboot_requested()


# ---- the daemon ----


class Daemon:
    def __init__(self, env, notify=None, extra_env=None):
        e = dict(os.environ)
        if notify:
            e["NOTIFY_SOCKET"] = notify
            e["WATCHDOG_USEC"] = "400000"
        e.update(extra_env or {})
        self.p = subprocess.Popen([env.dev.otter_exe, "--config", env.dev.conf, "daemon"],
                                  env=e, stderr=subprocess.PIPE, text=True)

    def signal(self, sig):
        self.p.send_signal(sig)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        _, err = self.p.communicate(timeout=20)
        print(err)
        return self.p.returncode, err


def wait_for(cond, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_daemon_cycle_with_systemd_notify(tmp_path, nginx):
    env = UpdateEnv(tmp_path, nginx)
    path = os.path.join(str(tmp_path), "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    messages = []

    def drain():
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except socket.timeout:
                return

    d = Daemon(env, notify=path)
    try:
        assert wait_for(lambda: (drain(), any("READY=1" in m for m in messages))[1])
        assert wait_for(lambda: (drain(), any("WATCHDOG=1" in m for m in messages))[1])
        data = env.release("1.1")
        d.signal(signal.SIGUSR1)        # check now
        assert wait_for(lambda: os.path.exists(env.reboot_marker), timeout=60)
        drain()
        assert any(m.startswith("STATUS=") for m in messages)
    finally:
        rc, err = d.stop()
    assert rc == 0
    drain()
    assert any("STOPPING=1" in m for m in messages)
    assert env.reboot_requested()
    assert env.agent()["state"] == "pending-reboot"
    # After the reboot the daemon confirms the new software on its own.
    assert env.reboot() == "B"
    d = Daemon(env)
    try:
        assert wait_for(lambda: env.agent()["state"] == "confirmed")
    finally:
        d.stop()
    assert env.slot("B", length=len(data["rootfs"])) == data["rootfs"]


def test_daemon_warns_about_a_single_copy_environment_and_confirms_each_boot(tmp_path, nginx):
    """Issue 8: at start the daemon warns about a one-line fw_env.config, and confirms the
    booted slot (an ordinary reboot used one of its tries) before READY."""
    env = UpdateEnv(tmp_path, nginx)
    dev = env.dev
    with open(dev.env_path, "w") as f:
        f.write(f"{dev.env_file} 0x0000 0x4000\n")
    run(["fw_setenv", "-c", dev.env_path, "-f", os.path.join(dev.base, "default.env"),
         "bootdelay", "0"], check=True)
    assert env.reboot() == "A"
    assert next(s for s in env.status()["slots"] if s["bootname"] == "A")["tries-left"] == 2
    d = Daemon(env)
    try:
        assert wait_for(lambda: next(s for s in env.status()["slots"]
                                     if s["bootname"] == "A")["tries-left"] == 3)
    finally:
        rc, err = d.stop()
    assert rc == 0
    assert "no redundant copy" in err and dev.env_path in err


def test_daemon_feeds_hardware_watchdog(tmp_path, nginx):
    wd = os.path.join(str(tmp_path), "watchdog")
    open(wd, "w").close()
    env = UpdateEnv(tmp_path, nginx,
                    extra_update=f"watchdog-device={wd}\nwatchdog-interval=1\n")
    d = Daemon(env)
    time.sleep(3.5)
    rc, _ = d.stop()
    assert rc == 0
    with open(wd, "rb") as f:
        fed = f.read()
    assert fed.count(b"\0") >= 3          # fed about once a second
    assert fed.endswith(b"V")             # magic close on a clean stop


def test_daemon_backs_off_when_the_repository_is_down(tmp_path, nginx):
    env = UpdateEnv(tmp_path, nginx)
    env.write_conf(repository="http://127.0.0.1:9/down")
    d = Daemon(env)
    try:
        assert wait_for(lambda: env.agent().get("consecutive-failures", 0) >= 2, timeout=30)
        assert env.agent()["state"] == "failed"
    finally:
        d.stop()
    assert env.status()["primary"] == "A"


@pytest.mark.parametrize("point", ["agent-downloading", "agent-download:5", "agent-installing",
                                   "agent-pending-reboot", "agent-reboot"])
def test_daemon_killed_at_each_transition_resumes(tmp_path, nginx, point):
    env = UpdateEnv(tmp_path, nginx)
    a_image = env.slot("A")
    data = env.release("1.1", size=IMAGE_SIZE)
    d = Daemon(env, extra_env={"OTTER_TEST_CRASHPOINT": point})
    assert d.p.wait(60) == 99, f"the daemon did not stop at {point}"
    d.p.stderr.close()
    bootable_is_good(env, {"A": a_image, "B": data["rootfs"]})
    # systemd restarts it: the cycle completes (or the pending reboot is requested).
    d = Daemon(env)
    try:
        assert wait_for(lambda: os.path.exists(env.reboot_marker), timeout=60)
    finally:
        d.stop()
    assert env.agent()["state"] == "pending-reboot"
    assert env.reboot() == "B"
    d = Daemon(env)
    try:
        assert wait_for(lambda: env.agent()["state"] == "confirmed")
    finally:
        d.stop()
    assert env.slot("B", length=IMAGE_SIZE) == data["rootfs"]


# ---- regressions found in review ----


@pytest.mark.parametrize("healthy", [True, False])
def test_power_cut_right_after_activation(tmp_path, nginx, healthy):
    """The environment was switched, agent.json still says installing, and the power went
    out: the new slots boot and must still be supervised (health check, rollback)."""
    env = UpdateEnv(tmp_path, nginx)
    d11 = env.release("1.1", size=IMAGE_SIZE)
    env.update(check=True)
    assert env.reboot() == "B"
    env.update(check=True)
    assert env.agent()["state"] == "confirmed"
    env.release("1.2", size=IMAGE_SIZE)
    crash(env, "agent-activated")
    assert env.state_file()["state"] == "installing"
    assert env.reboot() == "A"              # power back: the activated slots boot
    env.set_healthy(healthy)
    env.update()
    agent = env.agent()
    if healthy:
        assert agent["state"] == "confirmed" and agent["current"]["version"] == "1.2"
    else:
        assert agent["state"] == "rolled-back" and "1.2" in agent["failed-releases"]
        assert env.reboot_requested()
        assert env.reboot() == "B"
        env.update(check=True)
        assert not env.reboot_requested()   # 1.2 is not installed again
    # The confirmed fallback was never overwritten.
    assert env.slot("B", length=IMAGE_SIZE) == d11["rootfs"]


def test_restart_right_after_activation_requests_the_reboot(tmp_path, nginx):
    env = UpdateEnv(tmp_path, nginx)
    env.release("1.1", size=IMAGE_SIZE)
    crash(env, "agent-activated")
    env.update(check=True)                  # the daemon restarted, no reboot happened
    assert env.agent()["state"] == "pending-reboot"
    assert env.reboot_requested()
    assert env.reboot() == "B"
    env.update(check=True)
    assert env.agent()["state"] == "confirmed"


class CorruptingMirror:
    """Serves a repository folder; images come back with a corrupted prefix, cut after
    300 kB, and Range requests are dropped: a mirror that only ever gives bad bytes."""

    def __init__(self, root):
        import http.server
        import socketserver

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                path = os.path.join(root, self.path.lstrip("/"))
                if "/images/" in self.path:
                    if self.headers.get("Range"):
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    data = bytearray(open(path, "rb").read())
                    for i in range(5000, 6000):
                        data[i] ^= 0xFF
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(bytes(data[:300000]))
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if not os.path.isfile(path):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with open(path, "rb") as f:
                    data = f.read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.port = free_port()
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_bad_mirror_cannot_block_a_good_one(tmp_path, nginx):
    env = UpdateEnv(tmp_path, nginx)
    data = env.release("1.1", size=IMAGE_SIZE)
    evil = CorruptingMirror(nginx.root)
    try:
        env.write_conf(repository=f"http://127.0.0.1:{evil.port}/repo {env.repo_url}")
        _, err, rc = env.update()
        assert rc == 0, err
        assert env.reboot_requested()
        assert env.slot("B", length=IMAGE_SIZE) == data["rootfs"]
    finally:
        evil.close()


def test_watchdog_is_fed_while_the_network_stalls(tmp_path, nginx):
    """A server that accepts and never answers: the watchdog is still fed every second."""
    port = free_port()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    held = []
    threading.Thread(target=lambda: [held.append(listener.accept()) for _ in range(50)],
                     daemon=True).start()
    wd = os.path.join(str(tmp_path), "watchdog")
    os.mkfifo(wd)
    stamps = []

    def reader():
        with open(wd, "rb", buffering=0) as f:
            while f.read(1):
                stamps.append(time.monotonic())

    threading.Thread(target=reader, daemon=True).start()
    env = UpdateEnv(tmp_path, nginx,
                    extra_update=f"watchdog-device={wd}\nwatchdog-interval=1\n")
    env.write_conf(repository=f"http://127.0.0.1:{port}/repo",
                   extra_update=f"watchdog-device={wd}\nwatchdog-interval=1\n")
    with open(env.dev.conf) as f:
        text = f.read().replace("slow-timeout=2", "slow-timeout=15")
    with open(env.dev.conf, "w") as f:
        f.write(text)
    d = Daemon(env)
    time.sleep(12)
    d.stop()
    listener.close()
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert len(stamps) >= 8
    assert max(gaps) < 3, f"the watchdog went unfed for {max(gaps):.1f} s"


def test_longest_version_is_kept_whole(tmp_path, nginx):
    """A 64-byte version (the longest allowed) is stored whole: no reinstall loop."""
    env = UpdateEnv(tmp_path, nginx)
    version = "2." + "1" * 18 + "." + "2" * 18 + "." + "3" * 18 + ".44444"
    assert len(version) == 64
    env.release(version)
    env.update(check=True)
    assert env.reboot_requested()
    assert env.reboot() == "B"
    env.update(check=True)
    agent = env.agent()
    assert agent["state"] == "confirmed" and agent["current"]["version"] == version
    env.update(check=True)
    assert not env.reboot_requested()


@needs_faketime
def test_wall_clock_jump_does_not_fail_the_confirmation(tmp_path, nginx):
    """NTP sets a device without RTC two hours ahead right after boot: the deadline is on
    the boot clock, so the healthy release is still confirmed."""
    env = UpdateEnv(tmp_path, nginx)
    env.release("1.1", size=IMAGE_SIZE)
    env.update(check=True)
    assert env.reboot_requested()
    assert env.reboot() == "B"
    crash(env, "agent-pending-confirm")       # the deadline started; then the clock jumps
    _, err, rc = env.dev.otter("update", wrap=["faketime", "-f", "+2h"],
                               env={"FAKETIME_DONT_FAKE_MONOTONIC": "1"})
    assert rc == 0, err
    agent = env.agent()
    assert agent["state"] == "confirmed", agent


def test_one_cycle_at_a_time(tmp_path, nginx):
    """Issue 8, finding 7: while one `otter update` runs a cycle (here: blocked in its reboot
    command), a second `otter update` or `--check` is refused naming its pid, and a daemon
    neither dies nor runs a cycle of its own; afterwards the daemon carries on from the state
    the other process left."""
    go = os.path.join(str(tmp_path), "go")
    marker = os.path.join(str(tmp_path), "device", "reboot-requested")
    env = UpdateEnv(tmp_path, nginx)
    env.write_conf(f"reboot-command=while [ ! -e {go} ]; do sleep 0.1; done; touch {marker}\n")
    with open(env.dev.conf) as f:       # one reboot-command: the blocking one
        text = f.read()
    with open(env.dev.conf, "w") as f:
        f.write(text.replace(f"reboot-command=touch {marker}\n", "", 1))
    env.release("1.1")
    first = subprocess.Popen([env.dev.otter_exe, "--config", env.dev.conf, "update"],
                             stderr=subprocess.PIPE, text=True)
    d = None
    try:
        assert wait_for(lambda: os.path.exists(os.path.join(env.dev.data, "agent.json")) and
                        env.state_file()["state"] == "pending-reboot", timeout=60)
        assert first.poll() is None
        busy = f"another otter update/daemon cycle is running (pid {first.pid}"
        for args in ((), ("--check",)):
            _, err, rc = env.update(*args)
            assert rc == 1 and busy in err, err
        path = os.path.join(str(tmp_path), "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(30)
        d = Daemon(env, notify=path)
        while "READY=1" not in sock.recv(4096).decode():
            pass
        sock.close()                    # (a full socket would block the daemon)
        d.signal(signal.SIGUSR1)
        time.sleep(2)
        assert d.p.poll() is None, "the daemon died"
    finally:
        open(go, "w").close()
        _, err1 = first.communicate(timeout=60)
    assert first.returncode == 0, err1
    assert env.reboot_requested()
    # The daemon's next check sees the pending release (it reloads agent.json): no second
    # install, no second reboot request within the retry period.
    d.signal(signal.SIGUSR1)
    time.sleep(3)
    rc, err = d.stop()
    assert rc == 0
    assert busy in err and "skipping this check" in err
    assert "-> downloading" not in err
    assert env.agent()["state"] == "pending-reboot"
    assert not env.reboot_requested()
