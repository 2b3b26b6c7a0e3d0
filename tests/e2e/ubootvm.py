"""The real-U-Boot test device: QEMU's arm64 `virt` machine running Debian's u-boot-qemu
(qemu_arm64, environment in the second flash bank), the shipped contrib/uboot/boot.cmd with
only its documented board lines changed, a GPT disk (1 boot.scr, 2 slot A, 3 slot B, 4 data),
Debian's arm64 kernel and an initramfs holding the cross-compiled otter.

Slow artifacts are built once and cached in <build>/e2e/uboot, keyed by their inputs: the
extracted kernel package, the CFI flash modules (built from linux-source-6.1), the arm64
build of otter (meson cross build, incremental). Each session makes its own repository, disk
and flash under <build>/e2e/uboot-run (kept for the serial log)."""

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest

import vmlib
from vmlib import MIB, sh

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIR = os.path.abspath(os.environ.get("OTTER_BUILD_DIR") or
                            os.path.join(SOURCE_DIR, "build"))
CACHE = os.path.join(BUILD_DIR, "e2e", "uboot")
DEBS = os.path.join(BUILD_DIR, "e2e", "debs")
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "uboot")

UBOOT = "/usr/lib/u-boot/qemu_arm64/u-boot.bin"
ARM64_LIBDIRS = ["/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu"]
INTERP = "/lib/ld-linux-aarch64.so.1"
COMPATIBLE = "otter-e2e"
FLASH_SIZE = 64 * MIB        # one pflash bank of QEMU's virt machine
ENV_SIZE = 0x40000           # CONFIG_ENV_SIZE of qemu_arm64 (at the start of bank 2)
SLOT_SIZE = 80 * MIB
DATA_SIZE = 320 * MIB

TOOLS = {
    "qemu-system-aarch64": "qemu-system-arm from bookworm-backports",
    UBOOT: "u-boot-qemu",
    "mkimage": "u-boot-tools",
    "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
    "/usr/src/linux-source-6.1.tar.xz": "linux-source-6.1",
    "/usr/lib/aarch64-linux-gnu/pkgconfig/libubootenv.pc": "libubootenv-dev:arm64",
    "sfdisk": "fdisk", "mkfs.ext4": "e2fsprogs", "debugfs": "e2fsprogs", "cpio": "cpio",
    "depmod": "kmod", "zstd": "zstd", "fw_printenv": "libubootenv-tool", "bison": "bison",
    "flex": "flex", "bc": "bc", "meson": "meson",
}


def _digest(*parts):
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, str) and os.path.isfile(p):
            with open(p, "rb") as f:
                h.update(f.read())
        else:
            h.update(str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _cached(name, key, build):
    """CACHE/name/<output> built by build(dir) unless CACHE/name/.key says key."""
    d = os.path.join(CACHE, name)
    stamp = os.path.join(d, ".key")
    if os.path.exists(stamp) and open(stamp).read() == key:
        return d
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    build(d)
    with open(stamp, "w") as f:
        f.write(key)
    return d


def _deb(pattern, what):
    found = sorted(glob.glob(os.path.join(DEBS, pattern)))
    if not found:
        pytest.fail(f"no {pattern} in {DEBS} ({what}); run `make deps`", pytrace=False)
    return found[-1]


class Artifacts:
    """The cached inputs of every image: kernel, modules, busybox, otter for arm64."""

    def __init__(self):
        vmlib.require(TOOLS)
        os.makedirs(CACHE, exist_ok=True)
        src_version = sh(["dpkg-query", "-W", "-f=${Version}", "linux-source-6.1"]).strip()
        # The kernel package of linux-source-6.1's version: the CFI modules are built from
        # the kernel's own source.
        kdeb = _deb(f"linux-image-6.1.*-arm64_{src_version.replace(':', '%3a')}_arm64.deb",
                    f"Debian's arm64 kernel {src_version}, as linux-source-6.1")
        self.release = re.match(r"linux-image-(6\.1\.\d+-\d+-arm64)_",
                                os.path.basename(kdeb)).group(1)
        hdeb = _deb(f"linux-headers-{self.release}_*_arm64.deb", "Module.symvers")
        bdeb = _deb("busybox-static_*_arm64.deb", "busybox for the initramfs")

        def unpack_kernel(d):
            sh(["dpkg-deb", "-x", kdeb, d])
            sh(["dpkg-deb", "-x", hdeb, os.path.join(d, "headers")])
            sh(["depmod", "-b", d, self.release])
        self.kernel = _cached("kernel", _digest(kdeb, hdeb), unpack_kernel)
        self.modules_dir = os.path.join(self.kernel, "lib", "modules", self.release)
        self.image = os.path.join(self.kernel, "boot", f"vmlinuz-{self.release}")
        config = os.path.join(self.kernel, "boot", f"config-{self.release}")
        symvers = os.path.join(self.kernel, "headers", "usr", "src",
                               f"linux-headers-{self.release}", "Module.symvers")
        script = os.path.join(HERE, "build-mtd-modules.sh")

        def build_mtd(d):
            sh(["bash", script, config, symvers, self.release, d,
                os.path.join(CACHE, "linux-build")], timeout=1800)
        self.mtd = _cached("mtd-modules", _digest(config, symvers, src_version, script),
                           build_mtd)

        def unpack_busybox(d):
            sh(["dpkg-deb", "-x", bdeb, d])
        self.busybox = os.path.join(_cached("busybox", _digest(bdeb), unpack_busybox),
                                    "bin", "busybox")

        # otter for arm64: a meson cross build, incremental.
        self.xbuild = os.path.join(CACHE, "otter-arm64")
        if not os.path.exists(os.path.join(self.xbuild, "build.ninja")):
            shutil.rmtree(self.xbuild, ignore_errors=True)
            sh(["meson", "setup", self.xbuild, SOURCE_DIR, "--cross-file",
                os.path.join(SOURCE_DIR, "contrib", "cross", "aarch64-linux-gnu.ini"),
                "-Dtests=false", "-Dbuildtype=release", "-Db_pie=true"], timeout=600)
        sh(["meson", "compile", "-C", self.xbuild, "otter"], timeout=1200)
        self.otter = os.path.join(self.xbuild, "otter")
        self.otter_repo = os.path.join(BUILD_DIR, "otter-repo")
        if not os.path.exists(self.otter_repo):
            pytest.fail(f"{self.otter_repo} is not built", pytrace=False)

    def module_list(self):
        """Modules for the initramfs in load order: (path inside /lib/modules, source)."""
        deps = {}
        with open(os.path.join(self.modules_dir, "modules.dep")) as f:
            for line in f:
                mod, _, rest = line.partition(":")
                deps[os.path.basename(mod)[:-3]] = (mod, rest.split())
        order, seen = [], set()

        def add(name):
            if name in seen:
                return
            seen.add(name)
            mod, needs = deps[name]
            for n in needs:
                add(os.path.basename(n)[:-3])
            order.append((os.path.basename(mod), os.path.join(self.modules_dir, mod)))
        for name in ("virtio_mmio", "virtio_blk", "crc32c_generic", "ext4", "mtd", "chipreg"):
            add(name)
        for name in ("cfi_util", "gen_probe", "cfi_probe", "cfi_cmdset_0001", "physmap"):
            order.append((name + ".ko", os.path.join(self.mtd, name + ".ko")))
        return order


SYSTEM_CONF = f"""[system]
compatible={COMPATIBLE}
bootloader=uboot
data-directory=/data/otter

[bootloader]
fw-env-config=/etc/fw_env.config
tries=3

[slot.rootfs.0]
device=/dev/vda2
type=ext4
bootname=A

[slot.rootfs.1]
device=/dev/vda3
type=ext4
bootname=B

[update]
repository=file:///data/repo
trusted-root=/data/e2e/root.json
reboot-command=touch /run/e2e-reboot
health-check=test ! -e /data/e2e/fail-health-$(cat /run/e2e-version)
version-file=/slot/etc/os-release
confirm-deadline=300
download-attempts=2
"""

# The documented board lines of boot.cmd and what they become on QEMU's virt machine.
BOARD_LINES = {
    "otter_root=/dev/mmcblk0p2": "otter_root=/dev/vda2",
    "otter_root=/dev/mmcblk0p3": "otter_root=/dev/vda3",
    "load mmc 0:${otter_part} ${kernel_addr_r} /boot/Image && booti ${kernel_addr_r} - "
    "${fdt_addr}":
    "load virtio 0:${otter_part} ${kernel_addr_r} /boot/Image && "
    "load virtio 0:${otter_part} ${ramdisk_addr_r} /boot/initrd.img && "
    "booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdt_addr}",
}


def board_script():
    with open(os.path.join(SOURCE_DIR, "contrib", "uboot", "boot.cmd")) as f:
        text = f.read()
    for old, new in BOARD_LINES.items():
        assert text.count(old) == 1, f"boot.cmd no longer has the board line {old!r}"
        text = text.replace(old, new)
    return text


class Device:
    """One test device: repository on the host, disk, flash; boot() runs QEMU from power on
    to power off."""

    def __init__(self, art, workdir):
        self.art = art
        self.dir = workdir
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        self.log = os.path.join(workdir, "serial.log")
        self.boots = 0
        # Repository (host side), keys, trusted root.
        self.repo = os.path.join(workdir, "repo")
        self.keys = os.path.join(workdir, "keys")
        self.repo_cmd("init", "--keys-dir", self.keys)
        self.initrd = self._initramfs()
        # Disk: boot.scr, slot A = release 1.0, slot B = empty, data.
        self.disk = vmlib.Disk(os.path.join(workdir, "disk.img"), [
            ("boot", 8 * MIB), ("rootfs-a", SLOT_SIZE), ("rootfs-b", SLOT_SIZE),
            ("data", DATA_SIZE)])
        bootdir = os.path.join(workdir, "bootfs")
        os.makedirs(bootdir)
        with open(os.path.join(workdir, "boot.cmd"), "w") as f:
            f.write(board_script())
        sh(["mkimage", "-A", "arm64", "-T", "script", "-C", "none", "-d",
            os.path.join(workdir, "boot.cmd"), os.path.join(bootdir, "boot.scr")])
        self.disk.write(1, vmlib.make_ext4(bootdir, os.path.join(workdir, "boot.ext4"),
                                           8 * MIB, "boot"))
        self.disk.write(2, self.rootfs("1.0"))
        datadir = os.path.join(workdir, "datafs")
        os.makedirs(os.path.join(datadir, "e2e"))
        shutil.copy(os.path.join(self.repo, "metadata", "1.root.json"),
                    os.path.join(datadir, "e2e", "root.json"))
        shutil.copytree(self.repo, os.path.join(datadir, "repo"))
        self.disk.write(4, vmlib.make_ext4(datadir, os.path.join(workdir, "data.ext4"),
                                           DATA_SIZE, "data"))
        # Flash bank 2 (U-Boot's environment): erased.
        self.flash = os.path.join(workdir, "flash1.img")
        with open(self.flash, "wb") as f:
            f.write(b"\xff" * FLASH_SIZE)
        self.fw_env = os.path.join(workdir, "fw_env.config")
        with open(self.fw_env, "w") as f:
            f.write(f"{self.flash} 0x0 {ENV_SIZE:#x} {ENV_SIZE:#x}\n")

    # ---- repository ----

    def repo_cmd(self, *args):
        return sh([self.art.otter_repo, *args, "--repo", self.repo], timeout=300)

    def publish(self, version, behaviour=None, kernel=True):
        """Adds a release to the repository and copies the repository to the data
        partition."""
        img = self.rootfs(version, behaviour, kernel)
        zst = img + ".zst"
        sh(["zstd", "-q", "-f", "-3", "-T0", img, "-o", zst])
        self.repo_cmd("add-release", "--compatible", COMPATIBLE, "--version", version,
                      "--image", f"rootfs={zst}")
        self.repo_cmd("publish", "--key", os.path.join(self.keys, "targets-1.pem"))
        self.sync_repo()
        return img

    def sync_repo(self):
        """Replaces /repo on the data partition with the host's repository."""
        cmds = self._rm_tree("/repo")
        for root, dirs, files in os.walk(self.repo):
            rel = os.path.relpath(root, self.repo)
            target = "/repo" if rel == "." else "/repo/" + rel
            cmds.append(f"mkdir {target}")
            for name in files:
                cmds.append(f'write "{os.path.join(root, name)}" "{target}/{name}"')
        self.disk.debugfs(4, cmds, write=True)
        want = {os.path.relpath(os.path.join(r, n), self.repo): os.path.getsize(os.path.join(r, n))
                for r, _, fs in os.walk(self.repo) for n in fs}
        got = self._tree("/repo")
        assert got == want, f"the repository on the data partition differs: {got} != {want}"

    def _rm_tree(self, path):
        out = self.disk.debugfs(4, [f"ls -p {path}"])
        cmds = []
        exists = False
        for line in out.splitlines():
            m = re.match(r"^/\d+/(\d+)/\d+/\d+/(.+)/\d*/$", line)
            exists = exists or bool(m)
            if not m or m.group(2) in (".", ".."):
                continue
            mode, name = m.group(1), m.group(2)
            if int(mode, 8) & 0o170000 == 0o040000:
                cmds += self._rm_tree(f"{path}/{name}")
            else:
                cmds.append(f"rm {path}/{name}")
        cmds.append(f"rmdir {path}")
        return cmds if exists else []

    def _tree(self, path):
        """{relative path: size} of the files under path on the data partition."""
        out = self.disk.debugfs(4, [f"ls -p {path}"])
        tree = {}
        for line in out.splitlines():
            m = re.match(r"^/\d+/(\d+)/\d+/\d+/(.+)/(\d*)/$", line)
            if not m or m.group(2) in (".", ".."):
                continue
            if int(m.group(1), 8) & 0o170000 == 0o040000:
                tree.update({f"{m.group(2)}/{k}": v
                             for k, v in self._tree(f"{path}/{m.group(2)}").items()})
            else:
                tree[m.group(2)] = int(m.group(3))
        return tree

    # ---- images ----

    def _initramfs(self):
        root = os.path.join(self.dir, "initramfs")
        vmlib.busybox_root(root, self.art.busybox)
        modules = os.path.join(root, "lib", "modules")
        os.makedirs(modules)
        names = []
        for name, src in self.art.module_list():
            shutil.copy(src, os.path.join(modules, name))
            names.append(name)
        with open(os.path.join(root, "etc", "e2e-modules"), "w") as f:
            f.write("\n".join(names) + "\n")
        vmlib.install_program(self.art.otter, root, "/usr/bin/otter", ARM64_LIBDIRS, INTERP)
        os.makedirs(os.path.join(root, "etc", "otter"))
        with open(os.path.join(root, "etc", "otter", "system.conf"), "w") as f:
            f.write(SYSTEM_CONF)
        shutil.copy(os.path.join(HERE, "init.sh"), os.path.join(root, "init"))
        os.chmod(os.path.join(root, "init"), 0o755)
        # libcurl resolves nothing here, but keeps its defaults happy.
        with open(os.path.join(root, "etc", "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n")
        return vmlib.cpio_gz(root, os.path.join(self.dir, "initrd.img"))

    def rootfs(self, version, behaviour=None, kernel=True):
        """The ext4 image of one release: /boot/Image, /boot/initrd.img, /etc/os-release.
        kernel: True, False (no /boot/Image) or "corrupt" (random bytes)."""
        d = os.path.join(self.dir, f"rootfs-{version}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "boot"))
        os.makedirs(os.path.join(d, "etc"))
        if kernel == "corrupt":  # the size of a kernel, but no arm64 Image header
            with open(os.path.join(d, "boot", "Image"), "wb") as f:
                f.write(os.urandom(4 * MIB))
        elif kernel:
            shutil.copy(self.art.image, os.path.join(d, "boot", "Image"))
        shutil.copy(self.initrd, os.path.join(d, "boot", "initrd.img"))
        with open(os.path.join(d, "etc", "os-release"), "w") as f:
            f.write(f'NAME="otter e2e"\nVERSION_ID="{version}"\n')
        if behaviour:
            with open(os.path.join(d, "etc", "e2e-behaviour"), "w") as f:
                f.write(behaviour + "\n")
        used = sum(os.path.getsize(os.path.join(r, n)) for r, _, fs in os.walk(d) for n in fs)
        size = (used * 11 // 10 + 4 * MIB + MIB - 1) // MIB * MIB
        return vmlib.make_ext4(d, os.path.join(self.dir, f"rootfs-{version}.ext4"), size,
                               f"rootfs-{version}")

    # ---- the host's view ----

    def env(self):
        """U-Boot's environment as saved in flash (fw_printenv on the flash file)."""
        p = subprocess.run(["fw_printenv", "-c", self.fw_env], capture_output=True, text=True)
        env = {}
        for line in p.stdout.splitlines():
            k, sep, v = line.partition("=")
            if sep:
                env[k] = v
        return env

    def set_env(self, **values):
        script = os.path.join(self.dir, "fw_setenv.script")
        with open(script, "w") as f:
            for k, v in values.items():
                f.write(f"{k}={v}\n")
        sh(["fw_setenv", "-c", self.fw_env, "-s", script])

    def data_file(self, path, content=None):
        """Creates (content: bytes/str) or removes (None) a file on the data partition."""
        if content is None:
            self.disk.debugfs(4, [f"rm {path}"], write=True)
            return
        tmp = os.path.join(self.dir, "data-file.tmp")
        with open(tmp, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        self.disk.debugfs(4, [f"rm {path}", f'write "{tmp}" {path}'], write=True)

    # ---- running ----

    def qemu_cmd(self):
        return ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-smp", "1",
                "-m", "512", "-display", "none", "-monitor", "none", "-serial", "stdio",
                "-nic", "none", "-bios", UBOOT,
                "-drive", f"if=pflash,unit=1,format=raw,file={self.flash}",
                "-drive", f"if=none,file={self.disk.path},format=raw,id=hd0",
                "-device", "virtio-blk-device,drive=hd0"]

    def boot(self, timeout=600):
        """Powers on and runs until the system powers off; returns a Run."""
        self.boots += 1
        vm = vmlib.VM(self.qemu_cmd(), self.log)
        out = vm.wait_exit(timeout)
        return Run(out, vm)


class Run:
    """What one power-on showed on the serial console."""

    def __init__(self, out, vm):
        self.out = out
        self.vm = vm
        self.boots = re.findall(r"E2E-BOOT slot=(\S*) version=(\S*)", out)
        self.uboot_slots = re.findall(r"otter: booting slot (\S+)", out)
        self.statuses = []
        for m in re.finditer(r"E2E-STATUS-BEGIN\n(.*?)E2E-STATUS-END rc=(\d+)", out, re.S):
            try:
                self.statuses.append(json.loads(m.group(1)))
            except ValueError:
                self.statuses.append({"unparsable": m.group(1)})

    @property
    def status(self):
        assert self.statuses, f"no otter status on the console:\n{self.tail()}"
        return self.statuses[-1]

    def tail(self, n=80):
        return "\n".join(self.out.splitlines()[-n:])

    def check(self, cond, what):
        assert cond, f"{what}\nserial log ({self.vm.log_path}) tail:\n{self.tail()}"
