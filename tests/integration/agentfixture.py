"""An update-agent test bed: a repository made with otter-repo and served by nginx on
127.0.0.1, and a simulated device (abfixture.Device: file slots, a real boot environment,
the boot-script simulator) whose system.conf has an [update] section pointing at it.

The reboot command only records the request; the test "reboots" with the simulator, as the
bootloader would, then starts otter again."""

import json
import os
import shutil

from abfixture import Device
from conftest import run
from otterrepo import OtterRepo


class UpdateEnv:
    def __init__(self, tmp_path, nginx, bootloader="uboot", classes=("rootfs",),
                 repo_name="repo", installed="1.0", extra_update=""):
        self.tmp = str(tmp_path)
        self.nginx = nginx
        self.keys = os.path.join(self.tmp, "keys")
        self.repo = OtterRepo(os.path.join(nginx.root, repo_name))
        self.repo("init", "--keys-dir", self.keys)
        self.repo_url = nginx.url(repo_name)
        os.makedirs(os.path.join(self.tmp, "device"))
        self.dev = Device(os.path.join(self.tmp, "device"), bootloader)
        self.base = self.dev.base
        self.classes = list(classes)
        self.reboot_marker = os.path.join(self.base, "reboot-requested")
        self.healthy_flag = os.path.join(self.base, "healthy")
        self.root_copy = os.path.join(self.base, "root.json")
        shutil.copy(os.path.join(self.repo.metadata, "1.root.json"), self.root_copy)
        with open(os.path.join(self.base, "os-release"), "w") as f:
            f.write(f'NAME="Test OS"\nVERSION_ID="{installed}"\n')
        open(self.healthy_flag, "w").close()
        self.extra_slots = ""
        for cls in self.classes:
            if cls == "rootfs":
                continue
            for bootname, idx in (("A", 0), ("B", 1)):
                path = os.path.join(self.base, f"{cls}-{bootname.lower()}.img")
                with open(path, "wb") as f:
                    f.write(b"\x00" * (1 << 20))
                self.extra_slots += (f"\n[slot.{cls}.{idx}]\ndevice={path}\ntype=raw\n"
                                     f"bootname={bootname}\n")
        self.write_conf(extra_update)
        self.dev.first_boot()

    def write_conf(self, extra_update="", repository=None):
        with open(self.dev.conf) as f:
            text = f.read().split("\n[update]")[0]
        if self.extra_slots not in text:
            text += self.extra_slots
        text += f"""
[update]
repository={repository if repository is not None else self.repo_url}
trusted-root={self.root_copy}
reboot-command=touch {self.reboot_marker}
health-check=test -e {self.healthy_flag}
version-file={os.path.join(self.base, "os-release")}
confirm-deadline=60
poll-interval=10
poll-jitter=0
retry-min=1
retry-max=2
download-attempts=3
connect-timeout=3
slow-timeout=2
min-speed=1000
{extra_update}"""
        with open(self.dev.conf, "w") as f:
            f.write(text)

    # ---- repository side ----

    def image(self, version, cls="rootfs", size=256 * 1024):
        data = os.urandom(size)
        path = os.path.join(self.tmp, f"{cls}-{version}.img")
        with open(path, "wb") as f:
            f.write(data)
        return path, data

    def release(self, version, compatible="test-device", hardware=(), images=None, size=None):
        """Publishes a release; returns {class: bytes}."""
        images = images or {}
        args = ["add-release", "--compatible", compatible, "--version", version]
        out = {}
        for cls in self.classes:
            if cls in images:
                path, data = images[cls]
            else:
                path, data = self.image(version, cls, **({"size": size} if size else {}))
            args += ["--image", f"{cls}={path}"]
            out[cls] = data
        for h in hardware:
            args += ["--hardware", h]
        self.repo(*args)
        self.repo("publish", "--key", os.path.join(self.keys, "targets-1.pem"))
        return out

    def image_file(self, version, cls="rootfs"):
        """The published files (hash-prefixed copies) of an image on the server."""
        d = os.path.join(self.repo.path, "targets", "images", "test-device", version)
        return [os.path.join(d, n) for n in os.listdir(d) if n.endswith(f"{cls}-{cls}-{version}.img")]

    # ---- device side ----

    def otter(self, *args, **kw):
        return self.dev.otter(*args, **kw)

    def update(self, *args, check=None, env=None, timeout=120):
        return self.dev.otter("update", *args, check=check, env=env, timeout=timeout)

    def status(self):
        return self.dev.status()

    def agent(self):
        return self.status()["agent"]

    def reboot_requested(self):
        if os.path.exists(self.reboot_marker):
            os.unlink(self.reboot_marker)
            return True
        return False

    def reboot(self):
        """The bootloader's part of a reboot; returns the slot it booted."""
        return self.dev.sim.reboot()

    def set_healthy(self, healthy):
        if healthy:
            open(self.healthy_flag, "w").close()
        elif os.path.exists(self.healthy_flag):
            os.unlink(self.healthy_flag)

    def slot(self, bootname, cls="rootfs", length=None):
        if cls == "rootfs":
            data = self.dev.slot_bytes(bootname)
        else:
            with open(os.path.join(self.base, f"{cls}-{bootname.lower()}.img"), "rb") as f:
                data = f.read()
        return data[:length] if length is not None else data

    def state_file(self):
        with open(os.path.join(self.dev.data, "agent.json")) as f:
            return json.load(f)
