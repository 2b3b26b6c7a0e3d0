"""Helpers for the real-bootloader tier, independent of the architecture and the bootloader:
a QEMU serial driver with expect and hard timeouts, disk images built from files only (no
loop devices, no mounts: sfdisk on a file, `mkfs.ext4 -d`, dd at offsets, debugfs), busybox
initramfs archives, and copying an ELF program with the shared libraries it needs.

Every wait has a timeout; a missing tool is a test failure that names the package."""

import os
import re
import shutil
import subprocess
import threading
import time

import pytest

MIB = 1 << 20


def require(tools):
    """tools: {program: Debian package}. Fails (never skips) naming what is missing."""
    missing = [f"{t} (package {p})" for t, p in tools.items()
               if shutil.which(t) is None and not os.path.exists(t)]
    if missing:
        pytest.fail("the real-bootloader tier needs " + ", ".join(missing) +
                    "; run `make deps`", pytrace=False)


def sh(cmd, timeout=600, **kw):
    """Runs cmd (a list); fails the test with its output when it fails."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stdout[-3000:]}\n"
                    f"{p.stderr[-3000:]}", pytrace=False)
    return p.stdout


# ---- file systems and disks ----

def make_ext4(src_dir, out, size, label="", journal=True):
    """An ext4 image of size bytes holding src_dir's tree (root-owned), without mounting."""
    if os.path.exists(out):
        os.unlink(out)
    with open(out, "wb") as f:
        f.truncate(size)
    cmd = ["mkfs.ext4", "-q", "-F", "-b", "4096", "-E", "root_owner=0:0", "-L", label]
    if not journal:
        cmd += ["-O", "^has_journal"]
    if src_dir is not None:
        cmd += ["-d", str(src_dir)]
    sh(cmd + [str(out)])
    return out


class Disk:
    """A GPT disk image in a file. parts: [(name, size_bytes)], 1 MiB aligned, numbered
    from 1."""

    def __init__(self, path, parts):
        self.path = str(path)
        self.parts = []
        start = MIB
        for name, size in parts:
            size = (size + MIB - 1) // MIB * MIB
            self.parts.append({"name": name, "offset": start, "size": size})
            start += size
        total = start + MIB  # room for the backup GPT
        with open(self.path, "wb") as f:
            f.truncate(total)
        script = "label: gpt\n" + "".join(
            f"start={p['offset'] // 512}, size={p['size'] // 512}, name={p['name']}, "
            "type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n" for p in self.parts)
        sh(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", self.path], input=script)

    def part(self, number):
        return self.parts[number - 1]

    def write(self, number, image_or_bytes):
        """Writes an image file (or bytes) at the start of partition number."""
        p = self.part(number)
        data = image_or_bytes
        if not isinstance(data, (bytes, bytearray)):
            with open(data, "rb") as f:
                data = f.read()
        if len(data) > p["size"]:
            raise ValueError(f"image of {len(data)} bytes > partition {number}")
        with open(self.path, "r+b") as f:
            f.seek(p["offset"])
            f.write(data)

    def read(self, number, length=None):
        p = self.part(number)
        with open(self.path, "rb") as f:
            f.seek(p["offset"])
            return f.read(p["size"] if length is None else length)

    def extract(self, number, out):
        with open(out, "wb") as f:
            f.write(self.read(number))
        return out

    def debugfs(self, number, commands, write=False):
        """Runs debugfs commands on the ext4 file system in partition number, in place."""
        spec = f"{self.path}?offset={self.part(number)['offset']}"
        cmd = ["debugfs"] + (["-w"] if write else []) + ["-f", "-", spec]
        return sh(cmd, input="\n".join(commands) + "\n")


# ---- initramfs and programs ----

def needed_libs(elf, libdirs, readelf="readelf"):
    """The shared libraries elf needs, transitively: {soname: path}."""
    found, todo = {}, [elf]
    while todo:
        out = sh([readelf, "-d", str(todo.pop())])
        for soname in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out):
            if soname in found:
                continue
            for d in libdirs:
                cand = os.path.join(d, soname)
                if os.path.exists(cand):
                    found[soname] = cand
                    todo.append(cand)
                    break
            else:
                pytest.fail(f"{elf} needs {soname}, not found in {libdirs}", pytrace=False)
    return found


def install_program(elf, root, dest, libdirs, interpreter, readelf="readelf"):
    """Copies elf to root/dest with its libraries (into root/<their folder>) and the dynamic
    loader (root/interpreter)."""
    target = os.path.join(root, dest.lstrip("/"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy(elf, target)
    for soname, path in needed_libs(elf, libdirs, readelf).items():
        out = os.path.join(root, os.path.dirname(path).lstrip("/"), soname)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        shutil.copy(os.path.realpath(path), out)
    real_interp = os.path.realpath(interpreter)
    out = os.path.join(root, interpreter.lstrip("/"))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    shutil.copy(real_interp, out)


def busybox_root(root, busybox):
    """A root folder with a static busybox (of any architecture) as root/bin/busybox, links
    for the applets an init script needs, and the usual empty folders."""
    os.makedirs(os.path.join(root, "bin"), exist_ok=True)
    for d in ("sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "run", "tmp", "etc"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy(busybox, os.path.join(root, "bin", "busybox"))
    os.chmod(os.path.join(root, "bin", "busybox"), 0o755)
    applets = ("sh ash cat echo mount umount mkdir insmod sleep reboot poweroff sync grep "
               "sed awk cut tr head tail ls test [ touch rm cp mv ln printf date dmesg "
               "true false expr seq wc find xargs chmod uname dd hexdump md5sum sha256sum "
               "timeout kill ps env readlink basename dirname switch_root chroot").split()
    for a in applets:
        link = os.path.join(root, "bin", a)
        if not os.path.lexists(link):
            os.symlink("busybox", link)


def cpio_gz(root, out):
    """A newc cpio archive of root (gzip -1), owned by root, as the kernel unpacks it."""
    files = subprocess.run(["find", ".", "-mindepth", "1"], cwd=root, capture_output=True,
                           text=True, check=True).stdout
    with open(out, "wb") as f:
        cpio = subprocess.Popen(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=root,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        gz = subprocess.Popen(["gzip", "-1", "-n"], stdin=cpio.stdout, stdout=f)
        cpio.stdout.close()
        cpio.stdin.write(files.encode())
        cpio.stdin.close()
        if cpio.wait(timeout=300) != 0 or gz.wait(timeout=300) != 0:
            pytest.fail("cpio | gzip failed", pytrace=False)
    return out


# ---- QEMU ----

class Hang(AssertionError):
    pass


class VM:
    """One QEMU run: the serial console on stdout, read by a thread into a buffer and a log
    file. expect() waits for a regular expression with a hard timeout."""

    def __init__(self, cmd, log_path):
        self.cmd = [str(c) for c in cmd]
        self.log_path = str(log_path)
        self.buf = ""
        self.pos = 0
        self.lock = threading.Lock()
        self.log = open(self.log_path, "a", encoding="utf-8", errors="replace")
        self.log.write(f"\n===== {' '.join(self.cmd)}\n")
        self.log.flush()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            chunk = self.proc.stdout.read1(4096) if hasattr(self.proc.stdout, "read1") \
                else os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            text = chunk.decode("utf-8", errors="replace").replace("\r", "")
            with self.lock:
                self.buf += text
            self.log.write(text)
            self.log.flush()

    def tail(self, n=60):
        with self.lock:
            return "\n".join(self.buf.splitlines()[-n:])

    def expect(self, pattern, timeout):
        """Waits for pattern after what earlier expects consumed; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                m = rx.search(self.buf, self.pos)
                if m:
                    self.pos = m.end()
                    return m
            if time.monotonic() > deadline:
                self.kill()
                raise Hang(f"timed out after {timeout} s waiting for {pattern!r}; serial log "
                           f"tail ({self.log_path}):\n{self.tail()}")
            if self.proc.poll() is not None and not self.reader.is_alive():
                with self.lock:
                    m = rx.search(self.buf, self.pos)
                if m:
                    self.pos = m.end()
                    return m
                raise Hang(f"QEMU exited ({self.proc.returncode}) before {pattern!r}; serial "
                           f"log tail ({self.log_path}):\n{self.tail()}")
            time.sleep(0.1)

    def wait_exit(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Hang(f"QEMU still running after {timeout} s; serial log tail "
                       f"({self.log_path}):\n{self.tail()}")
        self.reader.join(timeout=10)
        self.log.close()
        return self.output()

    def output(self):
        with self.lock:
            return self.buf

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.reader.join(timeout=10)
        if not self.log.closed:
            self.log.close()
