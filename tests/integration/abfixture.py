"""A temporary A/B device for the integration and fault tests: two file-backed slots, a boot
environment (U-Boot redundant environment file + fw_env.config, or a grubenv), a simulated
kernel command line, a data directory and a system.conf; plus helpers to drive `otter`."""

import hashlib
import json
import os
import random
import shutil
import subprocess

from bootsim import BootSim
from conftest import binary, run

SLOT_SIZE = 4 * 1024 * 1024
PATTERN_A = bytes(range(256)) * (SLOT_SIZE // 256)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def image(size, seed):
    return random.Random(seed).randbytes(size)


class Device:
    def __init__(self, base, bootloader, tries=3, slot_size=SLOT_SIZE):
        self.base = str(base)
        self.bootloader = bootloader
        self.tries = tries
        self.otter_exe = binary("otter")
        p = lambda *n: os.path.join(self.base, *n)  # noqa: E731
        self.slot_a, self.slot_b = p("slot-a.img"), p("slot-b.img")
        self.cmdline, self.data = p("cmdline"), p("data")
        self.conf = p("system.conf")
        self.state = p("data", "slots.json")
        with open(self.slot_a, "wb") as f:
            f.write(PATTERN_A[:slot_size] if slot_size <= SLOT_SIZE else b"\xa5" * slot_size)
        with open(self.slot_b, "wb") as f:
            f.write(b"\x00" * slot_size)
        if bootloader == "uboot":
            self.env_file = p("uboot.env")
            self.env_path = p("fw_env.config")
            with open(self.env_file, "wb") as f:
                f.write(b"\x00" * 0x8000)
            with open(self.env_path, "w") as f:
                f.write(f"{self.env_file} 0x0000 0x4000\n{self.env_file} 0x4000 0x4000\n")
            with open(p("default.env"), "w") as f:
                f.write("bootcmd=run otter_boot\nbootdelay=0\n")
            # Provisioning: what U-Boot's first saveenv would leave.
            run(["fw_setenv", "-c", self.env_path, "-f", p("default.env"), "bootdelay", "0"],
                check=True)
            bl = f"fw-env-config={self.env_path}"
        else:
            self.env_file = self.env_path = p("grubenv")
            run(["grub-editenv", self.env_path, "create"], check=True)
            run(["grub-editenv", self.env_path, "set", "saved_entry=0"], check=True)
            bl = f"grubenv={self.env_path}"
        with open(self.conf, "w") as f:
            f.write(f"""# test device
[system]
compatible=test-device
bootloader={bootloader}
data-directory={self.data}
cmdline={self.cmdline}   # simulated /proc/cmdline

[bootloader]
{bl}
tries={tries}

[slot.rootfs.0]
device={self.slot_a}
type=raw
bootname=A

[slot.rootfs.1]
device={self.slot_b}
type=raw
bootname=B
""")
        self.sim = BootSim(bootloader, self.env_path, self.cmdline, tries=tries)

    # ---- driving otter ----

    def otter(self, *args, check=None, input=None, env=None, wrap=None, timeout=120):
        cmd = list(wrap or []) + [self.otter_exe, "--config", self.conf] + list(args)
        return run(cmd, check=check, input=input, env=env, timeout=timeout)

    def status(self):
        out, _err, _rc = self.otter("status", "--json", check=True)
        return json.loads(out)

    def write_image(self, data, name="image.bin"):
        path = os.path.join(self.base, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def install(self, data, *extra, check=True, version=None, source=None, **kw):
        path = source or self.write_image(data)
        args = ["install", path, "--class", "rootfs", "--sha256", sha256(data), "--length",
                str(len(data))]
        if version:
            args += ["--version", version]
        return self.otter(*(args + list(extra)), check=check, **kw)

    # ---- looking at the device ----

    def env_bytes(self):
        with open(self.env_file, "rb") as f:
            return f.read()

    def env(self):
        return self.sim.read_env()

    def slot_bytes(self, which):
        with open(self.slot_a if which == "A" else self.slot_b, "rb") as f:
            return f.read()

    def state_json(self):
        if not os.path.exists(self.state):
            return None
        with open(self.state, "rb") as f:
            return json.loads(f.read())

    def events(self, kind=None):
        st = self.state_json() or {}
        return [e for e in st.get("events", []) if kind is None or e["event"] == kind]

    def snapshot(self):
        """Copies of everything a crash could touch, to restore between runs."""
        snap = {}
        for path in (self.env_file, self.slot_b, self.state, self.cmdline):
            if os.path.exists(path):
                with open(path, "rb") as f:
                    snap[path] = f.read()
            else:
                snap[path] = None
        return snap

    def restore(self, snap):
        for path, data in snap.items():
            if data is None:
                if os.path.exists(path):
                    os.unlink(path)
            else:
                with open(path, "wb") as f:
                    f.write(data)
        for name in os.listdir(self.data) if os.path.isdir(self.data) else []:
            if name.startswith(".otter-tmp-"):
                os.unlink(os.path.join(self.data, name))

    def first_boot(self):
        """Boots A and confirms it: a provisioned device in the field."""
        assert self.sim.reboot() == "A"
        self.otter("mark-good", check=True)
        return self
