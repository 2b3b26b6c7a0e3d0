"""otter's Debian packages (debian/), built and installed the way a distribution would.

The packages are built from this source tree with dpkg-buildpackage (tests/deb/build-debs.sh,
without the build's own unit tests: the unit suite runs them), checked with lintian and by
their contents, then installed into a fresh Debian bookworm root where the demo's first
chapter runs against the installed programs and paths, and removed and purged
(tests/deb/in-root.sh says what each step checks).

The root is a `debootstrap --variant=minbase` of bookworm plus what the demo needs
(python3, nginx, libubootenv-tool, pkgconf), built once and cached in
<build>/deb/base-<key>/ (a couple of minutes); every run uses it as the read-only lower layer
of an overlay on a tmpfs, so each starts from the same fresh root and leaves nothing behind.
Needs root (debootstrap, mount, chroot) and the bookworm mirror the host's apt uses.
"""

import glob
import hashlib
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD_DIR = os.environ.get("OTTER_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
WORK = os.path.join(BUILD_DIR, "deb")
PACKAGES = ["otter", "otter-repo", "otter-director", "libotter0", "libotter-dev"]
# What the demo needs in the root, on top of minbase (otter's own dependencies are not
# here: apt-get installs them from the packages' Depends, which is part of the test).
ROOT_PACKAGES = ["python3", "nginx", "libubootenv-tool", "pkgconf"]
SUITES = ["bookworm", "bookworm-updates", "bookworm-security"]
# Raise to rebuild every cached root (a change of how it is made).
ROOT_FORMAT = 1


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, text=True, **kw)


@pytest.fixture(scope="module")
def debs():
    out = os.path.join(WORK, "pkgs")
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck", LINTIAN="0")
    run(["sh", os.path.join(HERE, "build-debs.sh"), SOURCE_DIR, out], env=env)
    found = {}
    for p in PACKAGES:
        files = glob.glob(os.path.join(out, f"{p}_*.deb"))
        assert len(files) == 1, f"expected one {p}_*.deb in {out}, found {files}"
        found[p] = files[0]
    found["changes"] = glob.glob(os.path.join(out, "otter_*.changes"))[0]
    found["dir"] = out
    return found


def deb_field(deb, field):
    return run(["dpkg-deb", "-f", deb, field], stdout=subprocess.PIPE).stdout.strip()


def deb_files(deb):
    out = run(["dpkg-deb", "-c", deb], stdout=subprocess.PIPE).stdout
    # "drwxr-xr-x root/root 0 date time ./path[ -> target]"
    return {line.split(None, 5)[5].split(" -> ")[0].lstrip(".") for line in out.splitlines()}


def test_lintian_reports_no_errors(debs):
    p = run(["lintian", "--fail-on", "error", "--info", debs["changes"]], check=False,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    print(p.stdout)
    errors = [line for line in p.stdout.splitlines() if line.startswith("E:")]
    assert p.returncode == 0 and not errors, f"lintian errors: {errors or p.stdout}"


def test_package_contents(debs):
    otter = deb_files(debs["otter"])
    for f in ("/usr/bin/otter", "/usr/bin/otter-tuf", "/etc/otter/system.conf",
              "/lib/systemd/system/otter.service", "/var/lib/otter/",
              "/usr/share/man/man1/otter.1.gz", "/usr/share/man/man1/otter-tuf.1.gz",
              "/usr/share/otter/uboot/boot.cmd", "/usr/share/otter/grub/grub.cfg",
              "/usr/share/doc/otter/agent.md"):
        assert f in otter, f"otter lacks {f}"
    repo = deb_files(debs["otter-repo"])
    assert {"/usr/bin/otter-repo", "/usr/share/man/man1/otter-repo.1.gz"} <= repo
    director = deb_files(debs["otter-director"])
    for f in ("/usr/bin/otter-director", "/usr/share/man/man1/otter-director.1.gz",
              "/etc/otter/director.conf", "/lib/systemd/system/otter-director.service",
              "/usr/share/doc/otter-director/director.md"):
        assert f in director, f"otter-director lacks {f}"
    dev = deb_files(debs["libotter-dev"])
    multiarch = run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"],
                    stdout=subprocess.PIPE).stdout.strip()
    for f in (f"/usr/lib/{multiarch}/libotter.so", f"/usr/lib/{multiarch}/pkgconfig/otter.pc",
              "/usr/include/otter/tuf.h", "/usr/include/otter/error.h"):
        assert f in dev, f"libotter-dev lacks {f}"
    assert not any(".so" in f for f in otter | repo | director), "a library in a program package"
    # Nothing is in two packages.
    lib = deb_files(debs["libotter0"])
    contents = [otter, repo, director, lib, dev]
    for i, a in enumerate(contents):
        for b in contents[i + 1:]:
            both = {f for f in a & b if not f.endswith("/")}
            assert not both, f"in two packages: {both}"
    # Each program package depends on what it links (dpkg-shlibdeps), the agent on libotter0.
    assert "libotter0" in deb_field(debs["otter"], "Depends")
    assert "libotter0 (= " in deb_field(debs["libotter-dev"], "Depends")
    conffiles = run(["sh", "-c", f"dpkg-deb --ctrl-tarfile '{debs['otter']}' | tar -xOf - ./conffiles"],
                    stdout=subprocess.PIPE).stdout.split()
    assert conffiles == ["/etc/otter/system.conf"]
    conffiles = run(["sh", "-c", f"dpkg-deb --ctrl-tarfile '{debs['otter-director']}' | "
                     "tar -xOf - ./conffiles"], stdout=subprocess.PIPE).stdout.split()
    assert conffiles == ["/etc/otter/director.conf"]


def test_library_package_is_named_after_the_soname(debs, tmp_path):
    """Debian policy 8.1: libotter.so.0 lives in libotter0, with a symbols file listing every
    function of the version script (an ABI change then fails the package build)."""
    run(["dpkg-deb", "-x", debs["libotter0"], str(tmp_path / "x")])
    lib = glob.glob(str(tmp_path / "x" / "usr" / "lib" / "*" / "libotter.so.0.*"))
    assert len(lib) == 1, lib
    dyn = run(["readelf", "-d", lib[0]], stdout=subprocess.PIPE).stdout
    assert "Library soname: [libotter.so.0]" in dyn
    assert deb_field(debs["libotter0"], "Package") == "libotter0"
    run(["dpkg-deb", "-e", debs["libotter0"], str(tmp_path / "ctl")])
    with open(tmp_path / "ctl" / "symbols") as f:
        symbols = f.read()
    assert symbols.startswith("libotter.so.0 libotter0 #MINVER#")
    with open(os.path.join(SOURCE_DIR, "src", "lib", "libotter.sym")) as f:
        script = [line.strip().rstrip(";") for line in f if line.strip().startswith("otter_")]
    listed = [line.split()[0].split("@")[0] for line in symbols.splitlines()
              if line.startswith(" otter_")]
    assert sorted(listed) == sorted(script) and len(script) > 100


def host_mirrors():
    """{suite: [URI]} of the bookworm suites the host's apt uses (its package lists), else
    Debian's own mirrors."""
    found = {}
    p = run(["apt-get", "indextargets", "--format", "$(REPO_URI) $(RELEASE) $(COMPONENT)"],
            check=False, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in SUITES and parts[2] == "main":
            found.setdefault(parts[1], [])
            if parts[0] not in found[parts[1]]:
                found[parts[1]].append(parts[0])
    if "bookworm" not in found:
        found = {"bookworm": ["http://deb.debian.org/debian/"],
                 "bookworm-updates": ["http://deb.debian.org/debian/"],
                 "bookworm-security": ["http://deb.debian.org/debian-security/"]}
    return found


def host_apt_conf():
    """The host's apt transport settings (proxies, retries, Check-Valid-Until) for the root."""
    keep = ("Acquire::Check-Valid-Until", "Acquire::Check-Date", "Acquire::Retries",
            "Acquire::http::Proxy", "Acquire::https::Proxy", "Acquire::http::Timeout")
    out = run(["apt-config", "dump"], stdout=subprocess.PIPE).stdout
    return "".join(line + "\n" for line in out.splitlines()
                   if line.startswith(keep) and not line.endswith('"";'))


@pytest.fixture(scope="module")
def apt_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("apt")
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    with open(d / "sources.list", "w") as f:
        for suite, uris in host_mirrors().items():
            for uri in uris:
                f.write(f"deb [signed-by={keyring}] {uri} {suite} main\n")
    with open(d / "apt.conf", "w") as f:
        f.write(host_apt_conf())
    return d


@pytest.fixture(scope="module")
def base_root():
    """The cached debootstrap root (built on first use)."""
    if os.getuid() != 0:
        pytest.fail("the install test needs root (debootstrap, mount, chroot): run `make test`"
                    " as root, or leave the deb suite out with `meson test --no-suite deb`")
    for tool in ("debootstrap", "unshare", "chroot"):
        assert shutil.which(tool), f"{tool} is missing: run `make deps-deb`"
    mirror = host_mirrors()["bookworm"][0]
    key = hashlib.sha256(f"{ROOT_FORMAT} {mirror} {' '.join(ROOT_PACKAGES)}".encode()).hexdigest()
    base = os.path.join(WORK, f"base-{key[:12]}")
    if os.path.exists(os.path.join(base, ".complete")):
        return base
    for old in glob.glob(os.path.join(WORK, "base-*")):
        shutil.rmtree(old, ignore_errors=True)
    tmp = base + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(WORK, exist_ok=True)
    log = os.path.join(WORK, "base.log")
    # In a private mount namespace: the /proc and /sys debootstrap mounts in the target never
    # show on the host, even if it is interrupted.
    with open(log, "w") as f:
        p = run(["unshare", "--mount", "--propagation", "private", "debootstrap",
                 "--variant=minbase", "--include=" + ",".join(ROOT_PACKAGES), "bookworm", tmp,
                 mirror], check=False, stdout=f, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        with open(log) as f:
            print(f.read()[-4000:])
        pytest.fail(f"debootstrap of the test root failed (log: {log})")
    run(["chroot", tmp, "apt-get", "clean"])
    open(os.path.join(tmp, ".complete"), "w").close()
    os.rename(tmp, base)
    return base


def test_install_run_demo_remove_purge(debs, base_root, apt_dir, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    p = run(["unshare", "--mount", "--pid", "--fork", "--propagation", "private",
             "sh", os.path.join(HERE, "run-in-root.sh"), base_root, debs["dir"], SOURCE_DIR,
             str(apt_dir), str(mnt)],
            check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1200)
    print(p.stdout)
    failed = [line for line in p.stdout.splitlines() if "FAILED" in line]
    assert p.returncode == 0, f"the install test failed (exit {p.returncode}): {failed}"
    for step in ("install otter", "check the installation", "the demo's first chapter",
                 "remove", "purge", "all steps passed"):
        assert f"deb-test: {step}" in p.stdout, f"step '{step}' did not run"
    assert "release 1.1  installed, rebooted, confirmed healthy" in p.stdout
