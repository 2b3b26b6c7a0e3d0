"""Generic helpers for the real-bootloader tier (tests/e2e): a QEMU process with its serial
console captured and an expect-with-timeout, disk images assembled from files (no loop
devices: sfdisk on a file, mkfs.ext4 -d / mkfs.vfat + mtools partition images written in at
their offsets, debugfs on "disk?offset=N" to read and edit an ext4 partition in place), a
busybox initramfs as a newc cpio, and an ELF's shared libraries copied into a root folder.

Nothing here knows the architecture: the caller names the QEMU binary and its arguments, the
kernel package, the lib folders to search and the readelf to use. Every wait has a timeout; a
timeout raises with the tail of the serial log. A missing tool raises MissingTool (the tier
fails, it never skips)."""

import os
import re
import shutil
import subprocess
import threading
import time

MIB = 1 << 20


class MissingTool(Exception):
    pass


class VmTimeout(AssertionError):
    pass


def require_tools(*names):
    """Fails with one clear message naming every missing program and `make deps`."""
    missing = [n for n in names if not (shutil.which(n) or
                                        (os.path.isabs(n) and os.access(n, os.X_OK)))]
    if missing:
        raise MissingTool("missing tools for the real-bootloader tier: " + ", ".join(missing) +
                          " (run `make deps` on Debian bookworm)")


def run(cmd, check=True, **kw):
    """Runs cmd; on failure raises with its output."""
    p = subprocess.run([str(c) for c in cmd], capture_output=True, **kw)
    if check and p.returncode != 0:
        out = p.stdout.decode(errors="replace") if isinstance(p.stdout, bytes) else p.stdout
        err = p.stderr.decode(errors="replace") if isinstance(p.stderr, bytes) else p.stderr
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {p.returncode}\n{out}\n{err}")
    return p


# ---- QEMU with a serial console ----

class Qemu:
    """One QEMU run. The serial console is QEMU's stdio (use -serial stdio, -display none,
    -monitor none): every byte is appended to log_path and kept in memory for expect().
    Run it with -no-reboot so that a reboot of the guest ends the process like a power-off:
    the caller decides what the next boot is (and may edit the disk in between)."""

    def __init__(self, argv, log_path, echo=False):
        self.argv = [str(a) for a in argv]
        self.log_path = str(log_path)
        self.echo = echo
        self._buf = bytearray()
        self._lock = threading.Condition()
        self._pos = 0  # expect() consumes the log up to here
        self._eof = False
        self._log = open(self.log_path, "ab")
        self._log.write(("\n==== " + " ".join(self.argv) + "\n").encode())
        self._log.flush()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 4096)
            with self._lock:
                if not chunk:
                    self._eof = True
                    self._lock.notify_all()
                    break
                self._buf += chunk
                self._log.write(chunk)
                self._log.flush()
                if self.echo:
                    os.write(2, chunk)
                self._lock.notify_all()

    @property
    def text(self):
        with self._lock:
            return self._buf.decode("latin-1")

    def tail(self, n=3000):
        # Serial output has \r\n and ANSI escapes from the firmware: keep it readable.
        t = self.text[-n:]
        t = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", t).replace("\r", "")
        return t

    def expect(self, pattern, timeout, what=None):
        """Waits for the regex (bytes or str, matched on latin-1 text) after the previous
        match; returns the match. Raises VmTimeout with the log tail on timeout or exit."""
        rx = re.compile(pattern if isinstance(pattern, str) else pattern.decode("latin-1"))
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                text = self._buf.decode("latin-1")
                m = rx.search(text, self._pos)
                if m:
                    self._pos = m.end()
                    return m
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    why = "QEMU exited" if self._eof else f"timeout after {timeout} s"
                    raise VmTimeout(f"{why} waiting for {what or pattern!r}; serial log "
                                    f"({self.log_path}) ends with:\n{self.tail()}")
                self._lock.wait(min(left, 1.0))

    def wait_exit(self, timeout):
        """Waits for QEMU to end (the guest powered off or rebooted under -no-reboot)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise VmTimeout(f"QEMU still running after {timeout} s; serial log "
                            f"({self.log_path}) ends with:\n{self.tail()}")
        self._reader.join(10)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(10)

    def close(self):
        self.kill()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---- disk images from files ----

def mkfs_ext4(path, size_mib, src_dir=None, label=None, extra=()):
    """An ext4 image file of size_mib MiB, filled from src_dir (mkfs.ext4 -d)."""
    if os.path.exists(path):
        os.unlink(path)
    cmd = ["mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0", *extra]
    if label:
        cmd += ["-L", label]
    if src_dir:
        cmd += ["-d", src_dir]
    run(cmd + [path, f"{size_mib}M"])
    return path


def mkfs_vfat(path, size_mib, files=None, label=None):
    """A FAT image file; files maps a path inside ("EFI/BOOT/BOOTX64.EFI") to a host file.
    Folders are made with mmd, files copied with mcopy (mtools: no mount)."""
    if os.path.exists(path):
        os.unlink(path)
    cmd = ["mkfs.vfat", "-C"]
    if label:
        cmd += ["-n", label]
    run(cmd + [path, str(size_mib * 1024)])
    made = set()
    for inside, host in sorted((files or {}).items()):
        parts = inside.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in made:
                run(["mmd", "-i", path, "::/" + d])
                made.add(d)
        run(["mcopy", "-i", path, host, "::/" + "/".join(parts)])
    return path


class Partition:
    def __init__(self, name, size_mib, image=None, type_guid=None):
        self.name = name
        self.size_mib = size_mib
        self.image = image          # file written at the partition's offset (may be smaller)
        self.type_guid = type_guid  # sfdisk type (GUID or alias such as "U" for the ESP)
        self.offset = None          # bytes, once the disk is made
        self.number = None


ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def make_gpt_disk(path, partitions, first_mib=1):
    """A GPT disk image file from Partition objects, in order, 1 MiB aligned, each image
    dd'ed in at its offset. Returns the partitions with offset and number set."""
    total = first_mib + sum(p.size_mib for p in partitions) + 1  # + backup GPT
    if os.path.exists(path):
        os.unlink(path)
    with open(path, "wb") as f:
        f.truncate(total * MIB)
    lines = ["label: gpt", "unit: sectors"]
    start = first_mib * MIB
    for i, p in enumerate(partitions, 1):
        p.offset, p.number = start, i
        lines.append(f"start={start // 512}, size={p.size_mib * MIB // 512}, "
                     f"type={p.type_guid or LINUX_TYPE}, name=\"{p.name}\"")
        start += p.size_mib * MIB
    run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", path],
        input="\n".join(lines).encode() + b"\n")
    for p in partitions:
        if p.image:
            write_at(path, p.offset, p.image, limit=p.size_mib * MIB)
    return partitions


def write_at(disk, offset, image, limit=None):
    """Copies the file image into disk at byte offset (no truncation of disk)."""
    size = os.path.getsize(image)
    if limit is not None and size > limit:
        raise ValueError(f"{image} ({size} bytes) does not fit in {limit} bytes")
    with open(image, "rb") as src, open(disk, "r+b") as dst:
        dst.seek(offset)
        shutil.copyfileobj(src, dst, 4 * MIB)


def read_at(disk, offset, length):
    with open(disk, "rb") as f:
        f.seek(offset)
        return f.read(length)


class Ext4At:
    """An ext4 filesystem inside a disk image at a byte offset, read and changed with debugfs
    (e2fsprogs' "file?offset=N" syntax): no mount, no loop device. Only while no VM runs."""

    def __init__(self, disk, offset):
        self.dev = f"{disk}?offset={offset}"

    def _debugfs(self, requests, write=False, check=True):
        script = "\n".join(requests) + "\n"
        cmd = ["debugfs"] + (["-w"] if write else []) + ["-f", "-", self.dev]
        p = subprocess.run(cmd, input=script.encode(), capture_output=True)
        if check and p.returncode != 0:
            raise RuntimeError(f"debugfs on {self.dev} failed: {p.stderr.decode()}")
        return p

    def read(self, path):
        """The file's bytes, or None if it does not exist."""
        p = subprocess.run(["debugfs", "-R", f"cat {path}", self.dev], capture_output=True)
        if p.returncode != 0 or b"File not found" in p.stderr:
            return None
        return p.stdout

    def exists(self, path):
        p = subprocess.run(["debugfs", "-R", f"stat {path}", self.dev], capture_output=True)
        return p.returncode == 0 and b"not found" not in p.stderr

    def write_bytes(self, path, data, tmp_dir):
        tmp = os.path.join(tmp_dir, ".ext4at-write")
        with open(tmp, "wb") as f:
            f.write(data)
        self.put(tmp, path)
        os.unlink(tmp)

    def put(self, host_file, path):
        """Creates or replaces one file (its folder must exist)."""
        self._debugfs([f"rm {path}", f"write {host_file} {path}"], write=True)
        if not self.exists(path):
            raise RuntimeError(f"debugfs could not write {path} on {self.dev}")

    def rm(self, path):
        self._debugfs([f"rm {path}"], write=True)

    def mkdir_p(self, path):
        parts = path.strip("/").split("/")
        self._debugfs([f"mkdir /{'/'.join(parts[:i])}" for i in range(1, len(parts) + 1)],
                      write=True)

    def put_tree(self, src_dir, dst_dir):
        """Copies a host folder tree over dst_dir (files replaced, others kept)."""
        reqs = []
        parts = dst_dir.strip("/").split("/")
        reqs += [f"mkdir /{'/'.join(parts[:i])}" for i in range(1, len(parts) + 1)]
        for root, dirs, files in os.walk(src_dir):
            rel = os.path.relpath(root, src_dir)
            base = dst_dir.rstrip("/") + ("" if rel == "." else "/" + rel)
            for d in sorted(dirs):
                reqs.append(f"mkdir {base}/{d}")
            for n in sorted(files):
                reqs += [f"rm {base}/{n}", f"write {os.path.join(root, n)} {base}/{n}"]
        self._debugfs(reqs, write=True)

    def fsck(self):
        """e2fsck -fn: True if the filesystem is clean."""
        return subprocess.run(["e2fsck", "-fn", self.dev], capture_output=True).returncode == 0


# ---- initramfs, kernel, libraries ----

def make_cpio(root_dir, out, compress="gzip"):
    """A newc cpio of root_dir (sorted, owner root), optionally gzip -1 compressed."""
    names = []
    for root, dirs, files in os.walk(root_dir):
        dirs.sort()
        rel = os.path.relpath(root, root_dir)
        if rel != ".":
            names.append(rel)
        for n in sorted(files):
            names.append(os.path.normpath(os.path.join(rel, n)))
    p = subprocess.run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], cwd=root_dir,
                       input=("\n".join(names) + "\n").encode(), capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(f"cpio failed: {p.stderr.decode()}")
    data = p.stdout
    if compress == "gzip":
        data = subprocess.run(["gzip", "-1", "-n", "-c"], input=data, capture_output=True,
                              check=True).stdout
    with open(out, "wb") as f:
        f.write(data)
    return out


def busybox_root(root_dir, busybox="/bin/busybox"):
    """The usual folders plus a static busybox as /bin/busybox and /bin/sh. Applet links are
    made by the init script (`/bin/busybox --install -s`), so any architecture works."""
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "run", "tmp", "etc",
              "mnt"):
        os.makedirs(os.path.join(root_dir, d), exist_ok=True)
    shutil.copy2(busybox, os.path.join(root_dir, "bin", "busybox"))
    sh = os.path.join(root_dir, "bin", "sh")
    if not os.path.lexists(sh):
        os.symlink("busybox", sh)


def _readelf(readelf, args, elf):
    return run([readelf, *args, elf]).stdout.decode(errors="replace")


def elf_needed(elf, readelf="readelf"):
    """(interpreter or None, [NEEDED sonames]) of an ELF file, for any architecture."""
    dyn = _readelf(readelf, ["-d", "-W"], elf)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn)
    hdr = _readelf(readelf, ["-l", "-W"], elf)
    m = re.search(r"Requesting program interpreter: ([^\]]+)\]", hdr)
    return (m.group(1) if m else None), needed


def copy_elf_with_libs(elf, root_dir, dest, lib_dirs, readelf="readelf", lib_dest=None,
                       sysroot=""):
    """Copies the ELF to root_dir/dest and every shared library it needs (transitively,
    found by soname in lib_dirs, in order) into the root. A library keeps its host path
    (minus sysroot) unless lib_dest names one folder for all; the interpreter keeps its path
    (under sysroot). Returns the list of paths inside the root that were written."""
    written = []

    def place(src, inside):
        target = os.path.join(root_dir, inside.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.realpath(src), target)
        written.append(inside)

    place(elf, dest)
    interp, needed = elf_needed(elf, readelf)
    if interp:
        host = sysroot + interp
        if not os.path.exists(host):
            raise FileNotFoundError(f"interpreter {interp} of {elf} not found under "
                                    f"'{sysroot or '/'}'")
        place(host, interp)
    todo, done = list(needed), set()
    while todo:
        so = todo.pop(0)
        if so in done:
            continue
        done.add(so)
        for d in lib_dirs:
            cand = os.path.join(d, so)
            if os.path.exists(cand):
                break
        else:
            raise FileNotFoundError(f"{so} (needed by {elf}) is in none of {lib_dirs}")
        if lib_dest:
            inside = os.path.join(lib_dest, so)
        else:
            inside = os.path.abspath(cand)
            if sysroot and inside.startswith(sysroot):
                inside = inside[len(sysroot):]
        if interp and os.path.basename(inside) == os.path.basename(interp):
            continue
        place(cand, inside)
        todo += elf_needed(cand, readelf)[1]
    return written


def fetch_kernel_deb(cache_dir, package, arch=None):
    """Downloads a Debian kernel package (e.g. linux-image-amd64, resolved to its versioned
    dependency) with apt-get download into cache_dir and unpacks it there, once. Returns
    (vmlinuz path, modules root = <unpacked>/lib/modules/<version>, version)."""
    os.makedirs(cache_dir, exist_ok=True)
    unpacked = os.path.join(cache_dir, "unpacked")
    done = os.path.join(cache_dir, ".done")
    if not os.path.exists(done):
        require_tools("apt-get", "apt-cache", "dpkg-deb", "depmod")
        pkg = package + (f":{arch}" if arch else "")
        for attempt in range(2):
            if attempt:
                # Package lists missing or stale (a fresh machine, or a kernel update
                # replaced the versioned package): refresh them once, as root can.
                subprocess.run(["apt-get", "update"], capture_output=True)
            dep = subprocess.run(["apt-cache", "depends", pkg],
                                 capture_output=True).stdout.decode()
            m = re.search(r"Depends: (linux-image-[^\s:]+)", dep)
            real = m.group(1) if m else package
            for f in os.listdir(cache_dir):
                if f.endswith(".deb"):
                    os.unlink(os.path.join(cache_dir, f))
            p = subprocess.run(["apt-get", "download", real + (f":{arch}" if arch else "")],
                               cwd=cache_dir, capture_output=True)
            debs = [f for f in os.listdir(cache_dir) if f.endswith(".deb")]
            if p.returncode == 0 and debs:
                break
        if p.returncode != 0 or not debs:
            raise MissingTool(f"could not download the kernel package {real} with apt-get "
                              f"download: {p.stderr.decode()} (needs the Debian mirror)")
        shutil.rmtree(unpacked, ignore_errors=True)
        run(["dpkg-deb", "-x", os.path.join(cache_dir, debs[0]), unpacked])
        os.unlink(os.path.join(cache_dir, debs[0]))
        versions = os.listdir(os.path.join(unpacked, "lib", "modules"))
        run(["depmod", "-b", unpacked, versions[0]])
        open(done, "w").close()
    version = os.listdir(os.path.join(unpacked, "lib", "modules"))[0]
    boot = os.path.join(unpacked, "boot")
    vmlinuz = [os.path.join(boot, f) for f in os.listdir(boot)
               if f.startswith(("vmlinuz-", "vmlinux-"))][0]
    return vmlinuz, os.path.join(unpacked, "lib", "modules", version), version


def module_closure(mod_root, names):
    """Module files (relative to mod_root) for the given module names and everything they
    depend on, in load order (dependencies first), from modules.dep (depmod output)."""
    deps = {}
    by_name = {}
    with open(os.path.join(mod_root, "modules.dep")) as f:
        for line in f:
            path, _, rest = line.strip().partition(":")
            deps[path] = rest.split()
            base = os.path.basename(path)
            base = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", base).replace("-", "_")
            by_name[base] = path
    order = []

    def visit(path, stack=()):
        if path in order:
            return
        for d in deps.get(path, []):
            if d not in stack:
                visit(d, stack + (path,))
        order.append(path)

    for n in names:
        key = n.replace("-", "_")
        if key not in by_name:
            raise KeyError(f"kernel module {n} not in {mod_root}/modules.dep")
        visit(by_name[key])
    return order


def copy_modules(mod_root, names, root_dir, dest="lib/modules"):
    """Copies the closure of names into root_dir/dest and returns their paths inside the
    root in load order (an init script insmods them one by one)."""
    out = []
    for rel in module_closure(mod_root, names):
        target = os.path.join(root_dir, dest, os.path.basename(rel))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(mod_root, rel), target)
        out.append("/" + os.path.join(dest, os.path.basename(rel)))
    return out
