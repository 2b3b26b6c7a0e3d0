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
  4. the timestamp expires (freeze attack) -> the device refuses to update.

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
CHAPTERS = 4
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

    def dev_otter(self, *args, **kw):
        if self.installed:  # the default configuration path
            return self.sh([self.otter, *args], **kw)
        return self.sh([self.otter, "--config", self.conf, *args], **kw)

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
        d = self.dev = os.path.join(self.work, "device")
        os.makedirs(d)
        self.slot = {"A": os.path.join(d, "slot-a.img"), "B": os.path.join(d, "slot-b.img")}
        self.write_image(self.slot["A"], "1.0", healthy=True, size=SLOT_SIZE)
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
        if self.installed:
            self.conf, root, data = INSTALLED_CONF, INSTALLED_ROOT, INSTALLED_DATA
        else:
            self.conf, root, data = (os.path.join(d, "system.conf"),
                                     os.path.join(d, "root.json"), os.path.join(d, "data"))
        shutil.copy(os.path.join(self.repo_dir, "metadata", "1.root.json"), root)
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
repository={self.nginx.url('acme')}
trusted-root={root}
reboot-command=touch {self.reboot_marker}
health-check={health}
version-file={d}/os-release
confirm-deadline=60
""")
        self.sim = BootSim("uboot", self.fw_config, self.cmdline)
        # Factory state: slot A holds 1.0, booted and confirmed.
        assert self.sim.reboot() == "A"
        self.dev_otter("mark-good", show=False)
        say("a gateway with slots A and B (U-Boot environment, boot counting: 3 tries),")
        say("running version 1.0 from slot A, trusting the repository's root.json")

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

    def status(self):
        return json.loads(self.dev_otter("status", "--json", show=False).stdout)

    def running(self):
        st = self.status()
        booted = st["booted"]
        with open(self.slot[booted], "rb") as f:
            head = f.read(64).split(b"\n")[0].decode(errors="replace")
        version = head.split("version=")[1].split()[0] if "version=" in head else "?"
        return booted, version, st

    def update(self, env=None):
        p = self.dev_otter("update", "-q", env=env, check=False)
        return p.returncode

    def reboot(self):
        if os.path.exists(self.reboot_marker):
            os.unlink(self.reboot_marker)
        slot = self.sim.reboot()
        say(f"(reboot: the boot script picks slot {slot})")
        return slot

    def reboot_requested(self):
        return os.path.exists(self.reboot_marker)

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
    finally:
        if getattr(demo, "nginx", None):
            demo.nginx.stop()
    ok = demo.summary(time.monotonic() - start)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
