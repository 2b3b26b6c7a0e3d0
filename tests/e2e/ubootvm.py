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
from vmlib import MIB

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIR = os.path.abspath(os.environ.get("OTTER_BUILD_DIR") or
                            os.path.join(SOURCE_DIR, "build"))
CACHE = os.path.join(BUILD_DIR, "e2e", "uboot")
DEBS = os.path.join(BUILD_DIR, "e2e", "debs")
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "uboot")

UBOOT = "/usr/lib/u-boot/qemu_arm64/u-boot.bin"
ARM64_LIBDIRS = ["/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu"]
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


def require(tools):
    """tools: {program or file: Debian package}. Fails (never skips) naming what is missing."""
    missing = [f"{t} (package {p})" for t, p in tools.items()
               if shutil.which(t) is None and not os.path.exists(t)]
    if missing:
        pytest.fail("the real-U-Boot tier needs " + ", ".join(missing) + "; run `make deps`",
                    pytrace=False)


def sh(cmd, timeout=600, **kw):
    """Runs cmd (a list); fails the test with its output when it fails."""
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                       **kw)
    if p.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stdout[-3000:]}\n"
                    f"{p.stderr[-3000:]}", pytrace=False)
    return p.stdout


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
        require(TOOLS)
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
                "-Dtests=false", "-Ddirector=false", "-Dbuildtype=release",
                "-Db_pie=true"], timeout=600)
        sh(["meson", "compile", "-C", self.xbuild, "otter:executable"], timeout=1200)
        self.otter = os.path.join(self.xbuild, "otter")
        self.otter_repo = os.path.join(BUILD_DIR, "otter-repo")
        if not os.path.exists(self.otter_repo):
            pytest.fail(f"{self.otter_repo} is not built", pytrace=False)

    def module_list(self):
        """Modules for the initramfs in load order: (file name, host path)."""
        order = [(os.path.basename(rel), os.path.join(self.modules_dir, rel))
                 for rel in vmlib.module_closure(self.modules_dir, [
                     "virtio_mmio", "virtio_blk", "crc32c_generic", "ext4", "mtd", "chipreg"])]
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
        bootdir = os.path.join(workdir, "bootfs")
        os.makedirs(bootdir)
        with open(os.path.join(workdir, "boot.cmd"), "w") as f:
            f.write(board_script())
        sh(["mkimage", "-A", "arm64", "-T", "script", "-C", "none", "-d",
            os.path.join(workdir, "boot.cmd"), os.path.join(bootdir, "boot.scr")])
        datadir = os.path.join(workdir, "datafs")
        os.makedirs(os.path.join(datadir, "e2e"))
        shutil.copy(os.path.join(self.repo, "metadata", "1.root.json"),
                    os.path.join(datadir, "e2e", "root.json"))
        shutil.copytree(self.repo, os.path.join(datadir, "repo"))
        mib = SLOT_SIZE // MIB
        self.disk = os.path.join(workdir, "disk.img")
        self.parts = vmlib.make_gpt_disk(self.disk, [
            vmlib.Partition("boot", 8, vmlib.mkfs_ext4(
                os.path.join(workdir, "boot.ext4"), 8, bootdir, "boot")),
            vmlib.Partition("rootfs-a", mib, self.rootfs("1.0")),
            vmlib.Partition("rootfs-b", mib),
            vmlib.Partition("data", DATA_SIZE // MIB, vmlib.mkfs_ext4(
                os.path.join(workdir, "data.ext4"), DATA_SIZE // MIB, datadir, "data"))])
        self.data = vmlib.Ext4At(self.disk, self.parts[3].offset)
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
        """Copies the host's repository over /repo on the data partition, and checks it."""
        self.data.put_tree(self.repo, "/repo")
        for root, _dirs, files in os.walk(self.repo):
            for name in files:
                host = os.path.join(root, name)
                inside = "/repo/" + os.path.relpath(host, self.repo)
                with open(host, "rb") as f:
                    assert self.data.read(inside) == f.read(), \
                        f"{inside} on the data partition differs from the repository"

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
        # libotter.so.0 comes from the cross build, the rest from the :arm64 packages.
        libdirs = [os.path.dirname(self.art.otter)] + ARM64_LIBDIRS
        vmlib.copy_elf_with_libs(self.art.otter, root, "/usr/bin/otter", libdirs,
                                 readelf="readelf", lib_dest="/usr/lib/aarch64-linux-gnu")
        os.makedirs(os.path.join(root, "etc", "otter"))
        with open(os.path.join(root, "etc", "otter", "system.conf"), "w") as f:
            f.write(SYSTEM_CONF)
        shutil.copy(os.path.join(HERE, "init.sh"), os.path.join(root, "init"))
        os.chmod(os.path.join(root, "init"), 0o755)
        # libcurl resolves nothing here, but keeps its defaults happy.
        with open(os.path.join(root, "etc", "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n")
        return vmlib.make_cpio(root, os.path.join(self.dir, "initrd.img"))

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
        return vmlib.mkfs_ext4(os.path.join(self.dir, f"rootfs-{version}.ext4"), size // MIB,
                               d, f"rootfs-{version}")

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
            self.data.rm(path)
        else:
            self.data.write_bytes(path, content.encode() if isinstance(content, str)
                                  else content, self.dir)

    # ---- running ----

    def qemu_cmd(self):
        return ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-smp", "1",
                "-m", "512", "-display", "none", "-monitor", "none", "-serial", "stdio",
                "-nic", "none", "-bios", UBOOT,
                "-drive", f"if=pflash,unit=1,format=raw,file={self.flash}",
                "-drive", f"if=none,file={self.disk},format=raw,id=hd0",
                "-device", "virtio-blk-device,drive=hd0"]

    def boot(self, timeout=600):
        """Powers on and runs until the system powers off; returns a Run."""
        self.boots += 1
        with vmlib.Qemu(self.qemu_cmd(), self.log) as vm:
            vm.wait_exit(timeout)
            return Run(vm.text.replace("\r", ""), vm)


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
