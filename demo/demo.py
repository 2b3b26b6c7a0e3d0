#!/usr/bin/python3
"""make demo: otter's whole secure update cycle on one machine, told as a short story.

A release team makes a TUF repository with otter-repo (offline root and targets keys, 2 of
3 targets keys needed, online snapshot and timestamp keys) and nginx serves it on
127.0.0.1. A simulated device (two file-backed A/B slots, a U-Boot environment read and
written with the real fw_setenv/fw_printenv, a simulator of the shipped boot script) runs
`otter update`. Then:

  1. release 1.1 is published -> the device updates, reboots, confirms;
  2. release 1.2 fails its health check -> the device rolls back by itself to 1.1;
  3. an attacker replaces the 1.3 image on the server -> the device refuses it;
  4. the timestamp expires (freeze attack) -> the device refuses to update;
  5. a fleet: otter-director (SQLite) beside the image repository, three devices register
     and speak Uptane; a rollout sends 1.1 to one device, then to all;
  6. a broken 1.2 fails its health check on the first device, which reports it, and the
     rollout pauses itself before any other device gets 1.2.

Everything it makes is kept in the work folder for inspection (printed at the end).

--installed runs it against an installation of the Debian packages instead of a build tree
(tests/deb/test_deb.py, in a throw-away root): /usr/bin/otter-repo and /usr/bin/otter, the
device configured at the installed default paths (/etc/otter/system.conf, replacing the
packaged example, /etc/otter/root.json, data in /var/lib/otter) and `otter` run without
--config. --chapters N stops after chapter N.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
from bootsim import BootSim  # noqa: E402
from servers import Nginx  # noqa: E402

TTY = sys.stdout.isatty()
SLOT_SIZE = 64 << 20
IMAGE_SIZE = 40 << 20
CHAPTERS = 6
# The installed default paths (include/otter/system.h, docs/agent.md) used by --installed.
INSTALLED_CONF = "/etc/otter/system.conf"
INSTALLED_ROOT = "/etc/otter/root.json"
INSTALLED_DATA = "/var/lib/otter"


def color(code, text):
    return f"\033[{code}m{text}\033[0m" if TTY else text


def chapter(n, title):
    head = f"== {n}. {title} " if n != "" else f"== {title} "
    print()
    print(color("1;36", head + "=" * max(0, 72 - len(head))))


def say(text):
    print(color("37", "   " + text))


def good(text):
    print(color("1;32", "   ✔ " + text))


def bad(text):
    print(color("1;31", "   ✘ " + text))


def installed_conf_is_example():
    """True when /etc/otter/system.conf is still the packaged example (comments only), so
    --installed never overwrites the configuration of a real device."""
    try:
        with open(INSTALLED_CONF) as f:
            return all(not line.strip() or line.lstrip().startswith(("#", ";")) for line in f)
    except FileNotFoundError:
        return True


class Demo:
    def __init__(self, build, work, installed=False, chapters=CHAPTERS):
        self.installed = installed
        self.chapters = chapters
        self.build = "/usr/bin" if installed else os.path.abspath(build)
        self.work = work
        self.otter_repo = os.path.join(self.build, "otter-repo")
        self.otter = os.path.join(self.build, "otter")
        for exe in (self.otter_repo, self.otter):
            if not os.access(exe, os.X_OK):
                sys.exit(f"demo: {exe} is missing: " +
                         ("install the otter and otter-repo packages" if installed
                          else "run `make` first"))
        if installed and not installed_conf_is_example():
            sys.exit(f"demo: {INSTALLED_CONF} is not the packaged example: --installed "
                     "replaces it, so it runs only where otter is not configured yet")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        self.keys = os.path.join(work, "keys")
        self.results = []

    def sh(self, cmd, show=True, check=True, env=None, quiet_output=False):
        if show:
            print(color("2", "   $ " + " ".join(os.path.relpath(c, self.work)
                                               if c.startswith(self.work) else
                                               os.path.basename(c) if c.startswith(self.build)
                                               else c for c in cmd)))
        full_env = dict(os.environ, **(env or {}))
        p = subprocess.run(cmd, env=full_env, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL if quiet_output else None, text=True)
        if check and p.returncode != 0:
            sys.exit(f"demo: {' '.join(cmd)} failed with status {p.returncode}")
        return p

    def repo(self, *args, **kw):
        return self.sh([self.otter_repo, *args, "--repo", self.repo_dir, "-q"], **kw)

    # ---- set-up ----

    def setup_repository(self):
        chapter(0, "The release team sets up a repository")
        self.nginx = Nginx(self.work)
        self.repo_dir = os.path.join(self.nginx.root, "acme")
        self.repo("init", "--keys-dir", self.keys, "--keys", "targets=3",
                  "--threshold", "targets=2")
        say("root and targets keys: offline (targets needs 2 of 3 signatures);")
        say("snapshot and timestamp keys: online, re-signed by cron (otter-repo refresh)")
        say(f"served by nginx at {self.nginx.url('acme/')}")

    def setup_device(self):
        self.device = SimDevice(self, installed=self.installed)
        self.conf = self.device.conf
        self.slot = self.device.slot

    @staticmethod
    def write_image(path, version, healthy, size=IMAGE_SIZE):
        header = (f"ACME-ROOTFS version={version} "
                  f"healthy={'yes' if healthy else 'no'}\n").encode()
        with open(path, "wb") as f:
            f.write(header.ljust(4096, b"\0"))
            block = os.urandom(1 << 20)
            written = 4096
            while written + len(block) <= size:
                f.write(block)
                written += len(block)
            f.write(block[: size - written])

    # ---- the release team ----

    def publish(self, version, healthy=True):
        img = os.path.join(self.work, f"rootfs-{version}.img")
        self.write_image(img, version, healthy)
        self.repo("add-release", "--compatible", "acme-gateway", "--version", version,
                  "--image", f"rootfs={img}")
        staged = os.path.join(self.repo_dir, "staging", "targets.json")
        for holder in (1, 2):  # two of the three offline key holders sign
            self.repo("sign", staged, "--key", os.path.join(self.keys, f"targets-{holder}.pem"))
        self.repo("publish")
        return img

    # ---- the device ----

    def dev_otter(self, *args, **kw):
        return self.device.otter(*args, **kw)

    def status(self):
        return self.device.status()

    def running(self):
        return self.device.running()

    def update(self, env=None):
        return self.device.update(env)

    def reboot(self):
        return self.device.reboot()

    def reboot_requested(self):
        return self.device.reboot_requested()

    def record(self, scenario, outcome, ok):
        booted, version, _ = self.running()
        self.results.append((scenario, outcome, f"{version} (slot {booted})", ok))
        (good if ok else bad)(f"{outcome}; the device runs {version} from slot {booted}")

    # ---- the story ----

    def story(self):
        chapter(1, "Release 1.1 is published")
        self.publish("1.1")
        say("the device checks for updates, streams the image into slot B, activates it:")
        rc = self.update()
        if rc != 0 or not self.reboot_requested():
            self.record("release 1.1", "update failed", False)
            return
        self.reboot()
        say("the new software starts otter, which runs the health check:")
        self.update()
        st = self.status()
        ok = st["agent"]["state"] == "confirmed" and self.running()[1] == "1.1"
        self.record("release 1.1", "installed, rebooted, confirmed healthy", ok)
        if self.chapters < 2:
            return

        chapter(2, "Release 1.2 fails its health check")
        self.publish("1.2", healthy=False)
        self.update()
        self.reboot()
        say("1.2 boots, but its health check fails:")
        self.update()
        rolled = self.reboot_requested()
        self.reboot()
        self.update()
        st = self.status()
        ok = (rolled and st["agent"]["state"] == "rolled-back" and
              "1.2" in st["agent"]["failed-releases"] and self.running()[1] == "1.1")
        self.record("release 1.2 (broken)", "rolled back by itself, 1.2 never retried", ok)

        if self.chapters < 3:
            return

        chapter(3, "An attacker replaces the 1.3 image on the server")
        self.publish("1.3")
        tampered = 0
        for root, _dirs, files in os.walk(os.path.join(self.repo_dir, "targets", "images")):
            for n in files:
                if "rootfs-1.3" in n:
                    self.write_image(os.path.join(root, n), "1.3-evil", healthy=True)
                    tampered += 1
        say(f"{tampered} copies of the image swapped for a malicious one of the same size")
        rc = self.update()
        st = self.status()
        ok = (rc != 0 and not self.reboot_requested() and st["primary"] == st["booted"] and
              "expected" in st["agent"]["last-error"])
        self.record("release 1.3 (tampered)", "refused: hash does not match the signed one",
                    ok)

        if self.chapters < 4:
            return

        chapter(4, "The timestamp expires (freeze attack)")
        self.publish("1.4")
        say("an attacker replays today's repository forever; two days later on the device:")
        lib = next((os.path.join(r, "libfaketime.so.1") for r in
                    (f"/usr/lib/{a}/faketime" for a in os.listdir("/usr/lib"))
                    if os.path.exists(os.path.join(r, "libfaketime.so.1"))), None)
        if not lib:
            sys.exit("demo: libfaketime missing (make deps installs Debian's faketime)")
        rc = self.update(env={"LD_PRELOAD": lib, "FAKETIME": "+2d"})
        st = self.status()
        ok = rc != 0 and "expired" in st["agent"]["last-error"] and not self.reboot_requested()
        self.record("release 1.4 (frozen repo)", "refused: timestamp.json expired", ok)

    # ---- the fleet (issue 11): a Director decides ----

    def director(self, *args, show=True, check=True):
        return self.sh([self.otter_director, "--config", self.dconf, *args], show=show,
                       check=check)

    def setup_director(self):
        self.otter_director = os.path.join(self.build, "otter-director")
        dd = os.path.join(self.work, "director")
        os.makedirs(dd)
        keys = os.path.join(dd, "keys")
        self.sh([self.otter_repo, "init", "--repo", os.path.join(dd, "offline"), "--keys-dir",
                 keys, "-q"], show=False)
        self.director_root = os.path.join(dd, "offline", "metadata", "1.root.json")
        trusted = os.path.join(dd, "image-repository")
        os.makedirs(trusted)
        shutil.copy(os.path.join(self.repo_dir, "metadata", "1.root.json"),
                    os.path.join(trusted, "root.json"))
        self.dconf = os.path.join(dd, "director.conf")
        with open(self.dconf, "w") as f:
            f.write(f"""[database]
url = sqlite:{dd}/director.db
[server]
threads = 2
[keys]
targets = {keys}/targets-1.pem
snapshot = {keys}/snapshot-1.pem
timestamp = {keys}/timestamp-1.pem
[image-repository]
metadata-url = file://{self.repo_dir}/metadata/
metadata-dir = {trusted}
""")
        self.director("root", "import", self.director_root, show=False)
        port_file = os.path.join(dd, "port")
        self.director_log = open(os.path.join(dd, "director.log"), "ab")
        self.director_proc = subprocess.Popen(
            [self.otter_director, "--config", self.dconf, "serve", "--listen", "127.0.0.1:0",
             "--port-file", port_file], stdout=self.director_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            if self.director_proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("demo: otter-director did not start (see director/director.log)")
            time.sleep(0.05)
        with open(port_file) as f:
            self.director_url = f"http://127.0.0.1:{int(f.read())}"
        say(f"otter-director on SQLite at {self.director_url}, beside the image repository;")
        say("its root made offline, its online keys sign each device's metadata")

    def stop_director(self):
        proc = getattr(self, "director_proc", None)
        if proc and proc.poll() is None:
            proc.terminate()
            proc.wait(30)

    def poll_fleet(self):
        """Each device runs one cycle; one that installed reboots and confirms or rolls back
        (and reboots again), reporting to the Director each time."""
        for dev in self.fleet:
            dev.update(show=False)
            for _ in range(2):
                if not dev.reboot_requested():
                    break
                dev.reboot(quiet=True)
                dev.update(show=False)

    def fleet_versions(self):
        return [dev.running()[1] for dev in self.fleet]

    def rollout_state(self, rid):
        doc = json.loads(self.director("rollout", "status", rid, "--json", show=False).stdout)
        return doc.get("rollout", doc)["state"]

    def fleet_story(self):
        chapter(5, "A fleet: the Director sends 1.1 to one device, then to all")
        self.setup_director()
        token = self.director("token", "create", "--uses", "3", show=False).stdout.strip()
        self.fleet = []
        for i in (1, 2, 3):
            name = f"gw-{i}"
            token_file = os.path.join(self.work, f"{name}-token")
            with open(token_file, "w") as f:
                f.write(token + "\n")
            self.fleet.append(SimDevice(self, name, quiet=True, extra_conf=f"""
[uptane]
director={self.director_url}
director-root={self.director_root}
device-id={name}
ecu-serial={name}-main
hardware-id=gateway-v2
token-file={token_file}
"""))
        self.poll_fleet()
        say("three gateways (gw-1..3) registered with a provisioning token; the image")
        say("repository offers 1.1 to 1.4, but they install only what the Director assigns:")
        say("running " + ", ".join(self.fleet_versions()))
        ids = [a for i in (1, 2, 3) for a in ("--device", f"gw-{i}")]
        self.director("rollout", "create", "fleet-1.1", "--target",
                      "releases/acme-gateway/1.1.json", *ids, "--phases", "1,100%")
        for dev in self.fleet:
            dev.update(show=False)
        first = [d for d in self.fleet if d.reboot_requested()]
        say(f"phase 1: {len(first)} device installs 1.1 ("
            + ", ".join(os.path.basename(d.dir) for d in first) + "); it reboots, confirms and "
            "reports:")
        for dev in first:
            dev.reboot(quiet=True)
            dev.update(show=False)
        say("the Director starts phase 2; the others poll:")
        self.poll_fleet()
        self.poll_fleet()
        now = self.fleet_versions()
        say("running " + ", ".join(now))
        ok = (len(first) == 1 and now == ["1.1"] * 3 and
              self.rollout_state("fleet-1.1") == "completed")
        self.record_fleet("fleet: 1.1 to one, then all", "phase by phase, each confirmed", ok,
                          now)

        if self.chapters < 6:
            return

        chapter(6, "A broken 1.2 fails on the first device; the rollout pauses itself")
        self.director("rollout", "create", "fleet-1.2", "--target",
                      "releases/acme-gateway/1.2.json", *ids, "--phases", "1,100%")
        for _ in range(3):
            self.poll_fleet()
        print(self.director("rollout", "status", "fleet-1.2").stdout)
        print(self.director("fleet").stdout)
        now = self.fleet_versions()
        failed = [d for d in self.fleet
                  if d.status()["agent"].get("uptane", {}).get("install-result") ==
                  "HEALTH_CHECK"]
        ok = (self.rollout_state("fleet-1.2") == "paused" and len(failed) == 1 and
              now == ["1.1"] * 3)
        self.record_fleet("fleet: broken 1.2", "1 health-check failure: rollout paused", ok,
                          now)

    def record_fleet(self, scenario, outcome, ok, versions):
        runs = ", ".join(versions)
        self.results.append((scenario, outcome, runs, ok))
        (good if ok else bad)(f"{outcome}; the fleet runs {runs}")

    def summary(self, seconds):
        chapter("", "Summary")
        w = max(len(r[0]) for r in self.results)
        o = max(len(r[1]) for r in self.results)
        print(f"   {'scenario'.ljust(w)}  {'what otter did'.ljust(o)}  device runs")
        print(f"   {'-' * w}  {'-' * o}  -----------")
        for scenario, outcome, runs, ok in self.results:
            mark = color("1;32", "✔") if ok else color("1;31", "✘")
            print(f"   {scenario.ljust(w)}  {outcome.ljust(o)}  {runs}  {mark}")
        print()
        n = len(self.results)
        say(f"{n} scenario{'s' if n != 1 else ''} in {seconds:.0f} s; "
            f"everything is kept in {self.work}")
        say("see `otter status`, docs/agent.md and docs/repository.md for what happened")
        return all(r[3] for r in self.results) and len(self.results) == self.chapters


class SimDevice:
    """A gateway: two file-backed A/B slots, a U-Boot environment read and written with the
    real fw_setenv/fw_printenv, the boot-script simulator, and its system.conf."""

    def __init__(self, demo, name="device", extra_conf="", quiet=False, installed=False):
        """installed: configured at the installed default paths (Demo --installed)."""
        self.demo = demo
        self.installed = installed
        d = self.dir = os.path.join(demo.work, name)
        os.makedirs(d)
        self.slot = {"A": os.path.join(d, "slot-a.img"), "B": os.path.join(d, "slot-b.img")}
        Demo.write_image(self.slot["A"], "1.0", healthy=True, size=SLOT_SIZE)
        with open(self.slot["B"], "wb") as f:
            f.truncate(SLOT_SIZE)
        env_file = os.path.join(d, "uboot.env")
        with open(env_file, "wb") as f:
            f.write(b"\0" * 0x8000)
        self.fw_config = os.path.join(d, "fw_env.config")
        with open(self.fw_config, "w") as f:
            f.write(f"{env_file} 0x0000 0x4000\n{env_file} 0x4000 0x4000\n")
        default_env = os.path.join(d, "default.env")
        with open(default_env, "w") as f:
            f.write("bootdelay=0\n")
        # (libubootenv notes that a blank environment is new: expected here.)
        subprocess.run(["fw_setenv", "-c", self.fw_config, "-f", default_env], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.cmdline = os.path.join(d, "cmdline")
        self.reboot_marker = os.path.join(d, "reboot-requested")
        health = os.path.join(d, "health-check")
        with open(health, "w") as f:
            # The new software checks itself: here, a flag inside the image it runs.
            f.write(f"""#!/bin/sh
slot=$(sed -n 's/.*otter\\.slot=\\([A-Za-z0-9_]*\\).*/\\1/p' {self.cmdline})
case "$slot" in A) dev={self.slot['A']} ;; B) dev={self.slot['B']} ;; *) exit 1 ;; esac
head -c 256 "$dev" | grep -q 'healthy=yes'
""")
        os.chmod(health, 0o755)
        with open(os.path.join(d, "os-release"), "w") as f:
            f.write('NAME="Acme OS"\nVERSION_ID="1.0"\n')
        if installed:
            self.conf, root, data = INSTALLED_CONF, INSTALLED_ROOT, INSTALLED_DATA
        else:
            self.conf, root, data = (os.path.join(d, "system.conf"),
                                     os.path.join(d, "root.json"), os.path.join(d, "data"))
        shutil.copy(os.path.join(demo.repo_dir, "metadata", "1.root.json"), root)
        with open(self.conf, "w") as f:
            f.write(f"""[system]
compatible=acme-gateway
bootloader=uboot
data-directory={data}
cmdline={self.cmdline}

[bootloader]
fw-env-config={self.fw_config}
tries=3

[slot.rootfs.0]
device={self.slot['A']}
type=raw
bootname=A

[slot.rootfs.1]
device={self.slot['B']}
type=raw
bootname=B

[update]
repository={demo.nginx.url('acme')}
trusted-root={root}
reboot-command=touch {self.reboot_marker}
health-check={health}
version-file={d}/os-release
confirm-deadline=60
{extra_conf}""")
        self.sim = BootSim("uboot", self.fw_config, self.cmdline)
        # Factory state: slot A holds 1.0, booted and confirmed.
        assert self.sim.reboot() == "A"
        self.otter("mark-good", show=False)
        if not quiet:
            say("a gateway with slots A and B (U-Boot environment, boot counting: 3 tries),")
            say("running version 1.0 from slot A, trusting the repository's root.json")

    def otter(self, *args, **kw):
        if self.installed:  # the default configuration path
            return self.demo.sh([self.demo.otter, *args], **kw)
        return self.demo.sh([self.demo.otter, "--config", self.conf, *args], **kw)

    def status(self):
        return json.loads(self.otter("status", "--json", show=False).stdout)

    def running(self):
        st = self.status()
        booted = st["booted"]
        with open(self.slot[booted], "rb") as f:
            head = f.read(64).split(b"\n")[0].decode(errors="replace")
        version = head.split("version=")[1].split()[0] if "version=" in head else "?"
        return booted, version, st

    def update(self, env=None, show=True):
        p = self.otter("update", "-q", env=env, check=False, show=show, quiet_output=not show)
        return p.returncode

    def reboot(self, quiet=False):
        if os.path.exists(self.reboot_marker):
            os.unlink(self.reboot_marker)
        slot = self.sim.reboot()
        if not quiet:
            say(f"(reboot: the boot script picks slot {slot})")
        return slot

    def reboot_requested(self):
        return os.path.exists(self.reboot_marker)



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--installed", action="store_true",
                    help="run the installed Debian packages at their default paths")
    ap.add_argument("--chapters", type=int, default=CHAPTERS, choices=range(1, CHAPTERS + 1),
                    help="stop after this chapter")
    args = ap.parse_args()
    work = os.path.abspath(args.work or os.path.join(args.build, "demo"))
    start = time.monotonic()
    demo = Demo(args.build, work, installed=args.installed, chapters=args.chapters)
    try:
        demo.setup_repository()
        demo.setup_device()
        demo.story()
        if demo.chapters >= 5:
            demo.fleet_story()
    finally:
        demo.stop_director()
        if getattr(demo, "nginx", None):
            demo.nginx.stop()
    ok = demo.summary(time.monotonic() - start)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
