"""The device of the GRUB tier: an x86_64 PC (QEMU q35, OVMF, one SATA disk) that boots the
shipped contrib/grub/grub.cfg in GRUB for x86_64-efi, changed only where its header asks a
board to adapt it: kernel arguments (the serial console, reboot on panic). Its slot
partitions and names are the shipped ones.

Disk (GPT, built from files; the partition numbers are the ones the shipped grub.cfg names):
  1 ESP (FAT)  /EFI/BOOT/BOOTX64.EFI (grub-mkimage, prefix /grub), /grub/grub.cfg,
               /grub/grubenv. Linux mounts it on /boot, so otter's grubenv is
               /boot/grub/grubenv (the default).
  2 slot A     ext4: /boot/vmlinuz, /boot/initrd.img, /etc/os-release, /etc/e2e-mode
  3 slot B     the same
  4 data       ext4: /repo (the otter-repo repository, file:///data/repo), /otter (the
               agent's data directory), /e2e (files the host uses to steer the guest)

The initramfs (tests/e2e/grub-init.sh as /init, busybox, the host's build/otter and its
libraries, the kernel modules for the disk) runs `otter update` once per boot and prints
`otter status --json` between markers; see grub-init.sh."""

import json
import os
import re
import shutil
import subprocess

import vmlib
from vmlib import Partition, MIB

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
# Another grub.cfg can be tried with OTTER_E2E_GRUB_CFG (e.g. an older one, to see a story
# fail); the tier as run by make test always boots the shipped one.
GRUB_CFG = os.environ.get("OTTER_E2E_GRUB_CFG") or os.path.join(SOURCE_DIR, "contrib", "grub",
                                                                 "grub.cfg")
GRUB_DIR = "/usr/lib/grub/x86_64-efi"
OVMF = "/usr/share/ovmf/OVMF.fd"
QEMU = "qemu-system-x86_64"
GRUB_MODULES = ["part_gpt", "fat", "ext2", "normal", "linux", "echo", "test", "loadenv",
                "reboot", "halt", "configfile", "gzio", "sleep", "search", "all_video",
                "efi_gop", "serial", "terminal"]
KERNEL_MODULES = ["ahci", "sd_mod", "ext4", "crc32c_generic", "vfat", "nls_cp437",
                  "nls_ascii"]
TOOLS = [QEMU, "grub-mkimage", "grub-editenv", "grub-script-check", "mkfs.vfat", "mmd",
         "mcopy", "mtype", "mkfs.ext4", "debugfs", "e2fsck", "sfdisk", "cpio", "gzip",
         "readelf", "depmod", "apt-get", "dpkg-deb", "/bin/busybox"]

ESP_MIB, SLOT_MIB, DATA_MIB = 16, 40, 200
SLOT_FS_MIB = 36  # the release images: ext4 filesystems a little smaller than the slot
COMPATIBLE = "e2e-grub"
KERNEL_ARGS = "console=ttyS0,115200 panic=5"
BOOT_TIMEOUT = int(os.environ.get("OTTER_E2E_BOOT_TIMEOUT", "420"))


def system_conf():
    return f"""[system]
compatible={COMPATIBLE}
bootloader=grub
data-directory=/data/otter

[bootloader]
grubenv=/boot/grub/grubenv
tries=3

[slot.rootfs.0]
device=/dev/sda2
type=ext4
bootname=A

[slot.rootfs.1]
device=/dev/sda3
type=ext4
bootname=B

[update]
repository=file:///data/repo
trusted-root=/etc/otter/root.json
health-check=test ! -e /data/e2e/unhealthy
reboot-command=touch /run/e2e-reboot
version-file=/slot/etc/os-release
confirm-deadline=300
poll-interval=3600
retry-min=1
retry-max=2
download-attempts=1
"""


class GrubDevice:
    def __init__(self, work, build_dir, cache_dir):
        vmlib.require_tools(*TOOLS)
        for f in (OVMF, GRUB_DIR):
            if not os.path.exists(f):
                raise vmlib.MissingTool(f"{f} missing (run `make deps`)")
        self.work = str(work)
        self.build = str(build_dir)
        self.cache = str(cache_dir)
        os.makedirs(self.work, exist_ok=True)
        self.disk = os.path.join(self.work, "disk.img")
        self.log = os.path.join(self.work, "serial.log")
        self.otter_repo = os.path.join(self.build, "otter-repo")
        self.repo = os.path.join(self.work, "repo")
        self.keys = os.path.join(self.work, "keys")
        self.boots = []  # one dict per QEMU run (see boot())
        self.vmlinuz, self.mod_root, self.kversion = vmlib.fetch_kernel_deb(
            os.path.join(self.cache, "kernel-amd64"), "linux-image-amd64")
        self._repo_init()
        self.initrd = self._make_initrd()
        self.efi = self._make_grub_efi()
        self.parts = None

    # ---- host side: repository, images, disk ----

    def repo_cmd(self, *args):
        return vmlib.run([self.otter_repo, *args, "--repo", self.repo], timeout=300)

    def _repo_init(self):
        shutil.rmtree(self.repo, ignore_errors=True)
        shutil.rmtree(self.keys, ignore_errors=True)
        self.repo_cmd("init", "--keys-dir", self.keys)

    def _make_initrd(self):
        root = os.path.join(self.work, "initrd-root")
        shutil.rmtree(root, ignore_errors=True)
        vmlib.busybox_root(root)
        shutil.copy(os.path.join(HERE, "grub-init.sh"), os.path.join(root, "init"))
        os.chmod(os.path.join(root, "init"), 0o755)
        libdirs = [os.path.join(self.build, "src", "lib"), os.path.join(self.build, "src"),
                   self.build, "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"]
        # One system folder for all: libotter.so.0 is found there, not through the build
        # tree's $ORIGIN run path.
        vmlib.copy_elf_with_libs(os.path.join(self.build, "otter"), root, "/usr/bin/otter",
                                 [d for d in libdirs if os.path.isdir(d)],
                                 lib_dest="/usr/lib/x86_64-linux-gnu")
        mods = vmlib.copy_modules(self.mod_root, KERNEL_MODULES, root)
        with open(os.path.join(root, "etc", "e2e-modules"), "w") as f:
            f.write("\n".join(mods) + "\n")
        os.makedirs(os.path.join(root, "etc", "otter"))
        with open(os.path.join(root, "etc", "otter", "system.conf"), "w") as f:
            f.write(system_conf())
        shutil.copy(os.path.join(self.repo, "metadata", "1.root.json"),
                    os.path.join(root, "etc", "otter", "root.json"))
        return vmlib.make_cpio(root, os.path.join(self.work, "initrd.img"))

    def _make_grub_efi(self):
        out = os.path.join(self.work, "BOOTX64.EFI")
        vmlib.run(["grub-mkimage", "-O", "x86_64-efi", "-d", GRUB_DIR, "-p", "/grub",
                   "-o", out, *GRUB_MODULES])
        return out

    def _grub_cfg(self):
        """The shipped grub.cfg with the one adaptation its header asks of a board: the
        kernel arguments. Here the console on the serial port (so that a kernel that never
        reaches init shows why) and a reboot 5 s after a panic (a crashing kernel is one more
        counted try, as on a device with a watchdog). Nothing else changes."""
        with open(GRUB_CFG) as f:
            text = f.read()
        line = "rootwait otter.slot=${otter_slot}"
        if text.count(line) != 1:
            raise AssertionError(f"{GRUB_CFG}: no single linux line with '{line}' to add "
                                 "the console to (update tests/e2e/grubdev.py)")
        text = text.replace(line, line + " " + KERNEL_ARGS)
        out = os.path.join(self.work, "grub.cfg")
        with open(out, "w") as f:
            f.write(text)
        return out

    def slot_image(self, version, mode=None, kernel=True):
        """An ext4 slot image with the kernel, the initramfs and VERSION_ID=version."""
        root = os.path.join(self.work, f"slot-{version}")
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(os.path.join(root, "boot"))
        os.makedirs(os.path.join(root, "etc"))
        if kernel:
            shutil.copy(self.vmlinuz, os.path.join(root, "boot", "vmlinuz"))
        shutil.copy(self.initrd, os.path.join(root, "boot", "initrd.img"))
        with open(os.path.join(root, "etc", "os-release"), "w") as f:
            f.write(f'NAME="otter e2e"\nVERSION_ID="{version}"\n')
        if mode:
            with open(os.path.join(root, "etc", "e2e-mode"), "w") as f:
                f.write(mode + "\n")
        img = os.path.join(self.work, f"rootfs-{version}.img")
        vmlib.mkfs_ext4(img, SLOT_FS_MIB, root, label=f"rootfs-{version}")
        shutil.rmtree(root)
        return img

    def make_disk(self, version_a="1.0", grubenv_vars=None):
        """The factory image: slot A holds version_a, slot B is empty, an empty grubenv
        (grub-editenv create, as docs/ab-updates.md says), the repository on the data
        partition."""
        esp_files = {"EFI/BOOT/BOOTX64.EFI": self.efi, "grub/grub.cfg": self._grub_cfg()}
        env = os.path.join(self.work, "grubenv")
        if os.path.exists(env):
            os.unlink(env)
        vmlib.run(["grub-editenv", env, "create"])
        if grubenv_vars:
            vmlib.run(["grub-editenv", env, "set"] + [f"{k}={v}" for k, v in
                                                      grubenv_vars.items()])
        esp_files["grub/grubenv"] = env
        esp = vmlib.mkfs_vfat(os.path.join(self.work, "esp.img"), ESP_MIB, esp_files,
                              label="ESP")
        data_root = os.path.join(self.work, "data-root")
        shutil.rmtree(data_root, ignore_errors=True)
        os.makedirs(os.path.join(data_root, "e2e"))
        shutil.copytree(self.repo, os.path.join(data_root, "repo"))
        data = vmlib.mkfs_ext4(os.path.join(self.work, "data.img"), DATA_MIB, data_root,
                               label="data")
        shutil.rmtree(data_root)
        slot_a = self.slot_image(version_a)
        self.parts = vmlib.make_gpt_disk(self.disk, [
            Partition("esp", ESP_MIB, esp, vmlib.ESP_TYPE),
            Partition("rootfs-a", SLOT_MIB, slot_a),
            Partition("rootfs-b", SLOT_MIB),
            Partition("data", DATA_MIB, data),
        ])
        for f in (esp, data, slot_a):
            os.unlink(f)

    @property
    def data(self):
        return vmlib.Ext4At(self.disk, self.parts[3].offset)

    def esp_img(self):
        return f"{self.disk}@@{self.parts[0].offset}"

    def publish(self, version, mode=None, kernel=True):
        """A release in the repository, copied onto the data partition."""
        img = self.slot_image(version, mode=mode, kernel=kernel)
        self.repo_cmd("add-release", "--compatible", COMPATIBLE, "--version", version,
                      "--image", f"rootfs={img}")
        self.repo_cmd("publish", "--key", os.path.join(self.keys, "targets-1.pem"))
        os.unlink(img)
        self.data.put_tree(self.repo, "/repo")

    def set_unhealthy(self, bad):
        if bad:
            self.data.write_bytes("/e2e/unhealthy", b"1\n", self.work)
        else:
            self.data.rm("/e2e/unhealthy")

    def grubenv(self):
        """The grubenv on the ESP (read with mtools, parsed with grub-editenv)."""
        tmp = os.path.join(self.work, "grubenv.read")
        vmlib.run(["mcopy", "-o", "-i", self.esp_img(), "::/grub/grubenv", tmp])
        out = vmlib.run(["grub-editenv", tmp, "list"]).stdout.decode()
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def put_grubenv_bytes(self, data):
        tmp = os.path.join(self.work, "grubenv.write")
        with open(tmp, "wb") as f:
            f.write(data)
        vmlib.run(["mcopy", "-o", "-i", self.esp_img(), tmp, "::/grub/grubenv"])

    def get_grubenv_bytes(self):
        tmp = os.path.join(self.work, "grubenv.read")
        vmlib.run(["mcopy", "-o", "-i", self.esp_img(), "::/grub/grubenv", tmp])
        with open(tmp, "rb") as f:
            return f.read()

    def set_grubenv(self, **values):
        tmp = os.path.join(self.work, "grubenv.edit")
        vmlib.run(["mcopy", "-o", "-i", self.esp_img(), "::/grub/grubenv", tmp])
        vmlib.run(["grub-editenv", tmp, "set"] + [f"{k}={v}" for k, v in values.items()])
        vmlib.run(["mcopy", "-o", "-i", self.esp_img(), tmp, "::/grub/grubenv"])

    # ---- one power-on ----

    def qemu_argv(self):
        return [QEMU, "-M", "q35", "-accel", "tcg", "-smp", "1", "-m", "768",
                "-nodefaults", "-display", "none", "-monitor", "none", "-serial", "stdio",
                "-no-reboot", "-bios", OVMF,
                "-drive", f"file={self.disk},format=raw,if=none,id=disk0",
                "-device", "ide-hd,drive=disk0,bus=ide.0"]

    def boot(self, timeout=BOOT_TIMEOUT):
        """Powers the machine on and waits until it powers off or reboots (QEMU runs with
        -no-reboot, so either ends it). Returns a dict: grub (what GRUB printed before the
        kernel), slot/version (from the init), status (otter status --json or None),
        grubenv (as the guest saw it), end ("reboot", "poweroff" or "grub-reboot": GRUB
        itself restarted), log (the serial text of this boot)."""
        with vmlib.Qemu(self.qemu_argv(), self.log) as vm:
            vm.wait_exit(timeout)
            text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", vm.text).replace("\r", "")
        b = {"log": text, "slot": None, "version": None, "status": None, "grubenv": None}
        m = re.search(r"E2E: booted slot=(\S*) root=\S* version=(\S*)", text)
        if m:
            b["slot"], b["version"] = m.group(1), m.group(2)
        m = re.search(r"E2E: STATUS-BEGIN\n(.*?)E2E: STATUS-END", text, re.S)
        b["status_text"] = m.group(1) if m else None
        if m and m.group(1).strip():
            try:
                b["status"] = json.loads(m.group(1))
            except ValueError:
                pass  # otter status failed: its message is in status_text and the log
        m = re.search(r"E2E: GRUBENV-BEGIN\n(.*?)E2E: GRUBENV-END", text, re.S)
        if m:
            b["grubenv"] = dict(line.split("=", 1) for line in m.group(1).splitlines()
                                if "=" in line)
        if "E2E: REBOOT" in text:
            b["end"] = "reboot"
        elif "E2E: POWEROFF" in text:
            b["end"] = "poweroff"
        elif "Kernel panic" in text:
            b["end"] = "panic"
        elif "E2E: init" not in text and "Linux version" not in text:
            b["end"] = "grub-reboot"
        else:
            b["end"] = "unknown"
        self.boots.append(b)
        return b
