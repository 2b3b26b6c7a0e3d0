"""A/B slot updates end to end, for U-Boot and GRUB: the otter CLI against file-backed slots,
a boot environment read and written also by fw_printenv/fw_setenv or grub-editenv, and the
boot-script simulator (bootsim.py) for reboots."""

import json
import os
import shutil
import subprocess

import pytest

from abfixture import Device, PATTERN_A, image, sha256
from conftest import SOURCE_DIR, run

BOOTLOADERS = ["uboot", "grub"]


@pytest.fixture(params=BOOTLOADERS)
def dev(request, tmp_path):
    return Device(tmp_path, request.param).first_boot()


def assert_a_untouched(dev):
    assert dev.slot_bytes("A") == PATTERN_A


# ---- the scenarios of issue 4 ----

def test_install_reboot_confirm(dev):
    img = image(1_500_000, 1)
    dev.install(img, version="2.0")
    st = dev.status()
    assert (st["booted"], st["primary"], st["update"]) == ("A", "B", "pending-reboot")
    env = dev.env()
    if dev.bootloader == "uboot":
        assert env["BOOT_ORDER"] == "B A" and env["BOOT_B_LEFT"] == "3"
        assert env["bootcmd"] == "run otter_boot"  # U-Boot's own variables are kept
    else:
        assert (env["ORDER"], env["B_OK"], env["B_TRY"]) == ("B A", "1", "0")
        assert env["saved_entry"] == "0"
    assert dev.slot_bytes("B")[:len(img)] == img
    assert dev.sim.reboot() == "B"
    st = dev.status()
    assert (st["booted"], st["update"]) == ("B", "trying")
    b = st["slots"][1]
    assert (b["state"], b["tries-left"], b["version"], b["sha256"], b["size"]) == \
        ("unknown", 2, "2.0", sha256(img), len(img))
    dev.otter("mark-good", check=True)
    st = dev.status()
    assert st["update"] == "confirmed"
    assert st["slots"][1]["state"] == "good" and st["slots"][1]["tries-left"] == 3
    # Confirmed: it keeps booting B (the health check confirms on every boot).
    for _ in range(5):
        assert dev.sim.reboot() == "B"
        dev.otter("mark-good", check=True)
    assert_a_untouched(dev)


def test_never_confirmed_rolls_back(dev):
    img = image(800_000, 2)
    dev.install(img, version="3.0")
    # The new system never confirms: the bootloader tries it `tries` times, then falls back.
    for _ in range(dev.tries):
        assert dev.sim.reboot() == "B"
        assert dev.status()["update"] == "trying"
    assert dev.sim.reboot() == "A"
    st = dev.status()
    assert st["update"] == "rolled-back"
    assert st["rollback"]["failed"] == "B"
    assert st["booted"] == "A" and st["primary"] == "A"
    assert st["slots"][1]["state"] == "bad" and not st["slots"][1]["in-order"]
    env = dev.env()
    assert (env.get("BOOT_ORDER") or env.get("ORDER")) == "A"
    assert len(dev.events("rolled-back")) == 1
    # Reported again, recorded once; B is never tried again.
    out, _, _ = dev.otter("status", check=True)
    assert "rolled-back" in out and "B failed" in out
    assert len(dev.events("rolled-back")) == 1
    for _ in range(4):
        assert dev.sim.reboot() == "A"
    dev.otter("mark-good", check=True)
    assert dev.status()["update"] == "rolled-back"
    assert_a_untouched(dev)


def test_install_over_bad_slot(dev):
    dev.otter("mark-bad", "B", check=True)
    st = dev.status()
    assert st["slots"][1]["state"] == "bad"
    assert dev.sim.reboot() == "A"
    img = image(500_000, 3)
    dev.install(img)
    assert dev.status()["primary"] == "B"
    assert dev.sim.reboot() == "B"
    dev.otter("mark-good", check=True)
    st = dev.status()
    assert st["update"] == "confirmed" and st["slots"][1]["state"] == "good"
    # And back: now A is the inactive slot, B is booted and can't be written.
    img2 = image(300_000, 4)
    dev.install(img2)
    assert dev.slot_bytes("A")[:len(img2)] == img2
    assert dev.slot_bytes("B")[:len(img)] == img
    assert dev.sim.reboot() == "A"


def refusal_cases(dev):
    """(name, args, stdin) of inputs refused before a byte is written."""
    img = image(200_000, 5)
    path = dev.write_image(img, "ok.bin")
    big = dev.write_image(image(dev_slot_size(dev) + 1, 6), "big.bin")
    h, n = sha256(img), str(len(img))
    big_data = open(big, "rb").read()
    return [
        ("larger than the slot", ["install", big, "--class", "rootfs", "--sha256",
                                  sha256(big_data), "--length", str(len(big_data))]),
        ("unknown class", ["install", path, "--class", "kernel", "--sha256", h, "--length", n]),
        ("missing image", ["install", path + ".missing", "--class", "rootfs", "--sha256", h,
                           "--length", n]),
        ("malformed sha256", ["install", path, "--class", "rootfs", "--sha256", "abc",
                              "--length", n]),
        ("zero length", ["install", path, "--class", "rootfs", "--sha256", h, "--length",
                         "0"]),
        ("bad length", ["install", path, "--class", "rootfs", "--sha256", h, "--length",
                        "12x"]),
        ("missing options", ["install", path]),
        ("unknown compression", ["install", path, "--class", "rootfs", "--sha256", h,
                                 "--length", n, "--compression", "xz"]),
        ("unreachable URL", ["install", "http://127.0.0.1:1/image", "--class", "rootfs",
                             "--sha256", h, "--length", n]),
    ]


def dev_slot_size(dev):
    return os.path.getsize(dev.slot_b)


def test_bad_inputs_refused_before_writing(dev):
    env0, b0, st0 = dev.env_bytes(), dev.slot_bytes("B"), open(dev.state, "rb").read()
    for name, args in refusal_cases(dev):
        _out, err, rc = dev.otter(*args)
        assert rc != 0, name
        assert err.strip(), name
        assert dev.env_bytes() == env0, name
        assert dev.slot_bytes("B") == b0, name
        assert open(dev.state, "rb").read() == st0, name
    assert_a_untouched(dev)


def test_bad_streams_never_activate(dev):
    """Inputs found bad only after writing began: the target bootname leaves the boot order
    (its bytes are no longer a fallback), nothing else in the environment changes, nothing
    is activated; a repeat is then byte-identical."""
    img = image(600_000, 7)
    path = dev.write_image(img)
    zpath = os.path.join(dev.base, "image.zst")
    run(["zstd", "-q", "-f", path, "-o", zpath], check=True)
    zdata = open(zpath, "rb").read()
    cut = dev.write_image(zdata[:-100], "cut.zst")
    env_before = dev.env()
    cases = [
        ("sha256 mismatch", ["install", path, "--class", "rootfs", "--sha256", "0" * 64,
                             "--length", str(len(img))], "SHA-256 mismatch"),
        ("truncated stream", ["install", "-", "--class", "rootfs", "--sha256", sha256(img),
                              "--length", str(len(img))], "truncated"),
        ("longer than announced", ["install", path, "--class", "rootfs", "--sha256",
                                   sha256(img), "--length", str(len(img) - 1)], "longer"),
        ("truncated zstd", ["install", cut, "--class", "rootfs", "--sha256",
                            sha256(zdata[:-100]), "--length", str(len(zdata) - 100)],
         "ends inside a frame"),
    ]
    for i, (name, args, needle) in enumerate(cases):
        before = dev.env_bytes()
        if "-" in args:
            p = subprocess.run([dev.otter_exe, "--config", dev.conf] + args,
                               input=img[:-1000], capture_output=True)
            err, rc = p.stderr.decode(), p.returncode
        else:
            _out, err, rc = dev.otter(*args)
        assert rc == 1 and needle in err, name
        st = dev.status()
        assert st["primary"] == "A" and st["booted"] == "A", name
        assert st["slots"][1]["installing"] and st["slots"][1]["state"] == "bad", name
        if i > 0:
            assert dev.env_bytes() == before, name
        env = dev.env()
        for k, v in env_before.items():
            if "B" not in k.split("_") and k not in ("BOOT_ORDER", "ORDER"):
                assert env.get(k) == v, (name, k)
        assert (env.get("BOOT_ORDER") or env.get("ORDER")) == "A"
        _o, err2, rc2 = dev.otter("mark-active", "B")
        assert rc2 == 1 and "incomplete install" in err2
        assert dev.sim.pick_without_writing() == "A"
    assert_a_untouched(dev)
    # A good install afterwards completes.
    dev.install(img)
    assert dev.sim.reboot() == "B"


# ---- sources and formats ----

def test_install_sources(dev, nginx):
    img = image(1_000_000, 8)
    path = dev.write_image(img)
    h, n = sha256(img), str(len(img))
    # standard input
    subprocess.run([dev.otter_exe, "--config", dev.conf, "install", "-", "--class", "rootfs",
                    "--sha256", h, "--length", n, "--no-activate"], input=img, check=True,
                   capture_output=True)
    assert dev.slot_bytes("B")[:len(img)] == img
    assert dev.status()["primary"] == "A"
    dev.otter("mark-active", "rootfs.1", check=True)
    assert dev.status()["primary"] == "B"
    # file:// URL
    img2 = image(700_000, 9)
    p2 = dev.write_image(img2, "two.bin")
    dev.otter("install", "file://" + p2, "--class", "rootfs", "--sha256", sha256(img2),
              "--length", str(len(img2)), check=True)
    assert dev.slot_bytes("B")[:len(img2)] == img2
    # http:// from nginx on 127.0.0.1, zstd-compressed, detected by its magic
    zsrc = os.path.join(nginx.root, "rootfs.img.zst")
    run(["zstd", "-q", "-19", path, "-o", zsrc], check=True)
    z = open(zsrc, "rb").read()
    dev.otter("install", nginx.url("rootfs.img.zst"), "--class", "rootfs", "--sha256",
              sha256(z), "--length", str(len(z)), "--version", "4.2", check=True)
    assert dev.slot_bytes("B")[:len(img)] == img
    st = dev.status()
    assert st["slots"][1]["version"] == "4.2" and st["slots"][1]["sha256"] == sha256(z)
    # A server sending more than the expected length is cut off.
    _o, err, rc = dev.otter("install", nginx.url("rootfs.img.zst"), "--class", "rootfs",
                            "--sha256", sha256(z), "--length", str(len(z) - 1))
    assert rc == 1 and ("exceeds" in err or "more than" in err or "longer" in err)
    assert_a_untouched(dev)


def test_zstd_compressible_image(dev):
    img = b"\x00" * 3_000_000 + image(1000, 10)
    path = dev.write_image(img)
    zpath = path + ".zst"
    run(["zstd", "-q", path, "-o", zpath], check=True)
    z = open(zpath, "rb").read()
    assert len(z) < 100_000
    dev.otter("install", zpath, "--class", "rootfs", "--sha256", sha256(z), "--length",
              str(len(z)), "--compression", "zstd", check=True)
    assert dev.slot_bytes("B")[:len(img)] == img
    # Forced "none" writes the compressed bytes as they are.
    dev.otter("install", zpath, "--class", "rootfs", "--sha256", sha256(z), "--length",
              str(len(z)), "--compression", "none", check=True)
    assert dev.slot_bytes("B")[:len(z)] == z


# ---- interoperability with the bootloaders' own tools ----

def test_interop_uboot_tools(tmp_path):
    dev = Device(tmp_path, "uboot")
    env = ["fw_setenv", "-c", dev.env_path]
    run(env + ["BOOT_ORDER", "B A"], check=True)
    run(env + ["BOOT_B_LEFT", "2"], check=True)
    run(env + ["BOOT_A_LEFT", "0"], check=True)
    with open(dev.cmdline, "w") as f:
        f.write("otter.slot=B\n")
    st = dev.status()
    assert st["primary"] == "B"
    assert [s["tries-left"] for s in st["slots"]] == [0, 2]
    dev.otter("mark-good", check=True)
    out, _, _ = run(["fw_printenv", "-c", dev.env_path, "-n", "BOOT_B_LEFT"], check=True)
    assert out.strip() == "3"
    dev.otter("mark-active", "A", check=True)
    out, _, _ = run(["fw_printenv", "-c", dev.env_path], check=True)
    assert "BOOT_ORDER=A B" in out and "BOOT_A_LEFT=3" in out and "bootdelay=0" in out
    # Redundant environment: each store goes to the other copy; both copies stay valid so a
    # torn write of one leaves the other.
    data = dev.env_bytes()
    flags = (data[4], data[0x4004])
    dev.otter("mark-bad", "A", check=True)
    data2 = dev.env_bytes()
    assert (data2[4], data2[0x4004]) != flags
    out, _, _ = run(["fw_printenv", "-c", dev.env_path, "-n", "BOOT_ORDER"], check=True)
    assert out.strip() == "B"
    # Tearing the copy just written (zeroing it) falls back to the previous copy.
    newer = 0 if data2[4] > data2[0x4004] else 0x4000
    torn = bytearray(data2)
    torn[newer + 10:newer + 20] = b"\xff" * 10
    open(dev.env_file, "wb").write(bytes(torn))
    out, _, _ = run(["fw_printenv", "-c", dev.env_path, "-n", "BOOT_ORDER"], check=True)
    assert out.strip() == "A B"
    assert dev.status()["primary"] == "A"


def test_interop_uboot_blank_env_refused(tmp_path):
    dev = Device(tmp_path, "uboot")
    open(dev.env_file, "wb").write(b"\x00" * 0x8000)  # no valid copy
    with open(dev.cmdline, "w") as f:
        f.write("otter.slot=A\n")
    assert dev.status()["primary"] == "A"  # U-Boot's defaults, as the script sets them
    _o, err, rc = dev.otter("mark-active", "B")
    assert rc == 1 and "no valid copy" in err
    assert dev.env_bytes() == b"\x00" * 0x8000


def test_single_copy_uboot_environment_warns(tmp_path):
    """Issue 8: a one-line fw_env.config (no redundant copy) is lost to U-Boot's defaults by
    a torn write; status says so on stderr and in "warnings"; a redundant one does not."""
    dev = Device(tmp_path, "uboot")
    with open(dev.cmdline, "w") as f:
        f.write("otter.slot=A\n")
    out, err, rc = dev.otter("status", "--json", check=True)
    assert json.loads(out)["warnings"] == [] and "warning" not in err
    with open(dev.env_path, "w") as f:
        f.write(f"# single copy\n\n{dev.env_file} 0x0000 0x4000\n")
    run(["fw_setenv", "-c", dev.env_path, "-f", os.path.join(dev.base, "default.env"),
         "bootdelay", "0"], check=True)
    out, err, rc = dev.otter("status", "--json", check=True)
    warnings = json.loads(out)["warnings"]
    assert len(warnings) == 1 and "single U-Boot environment" in warnings[0]
    assert dev.env_path in warnings[0] and "redundant" in warnings[0]
    assert "otter status: warning:" in err and "no redundant copy" in err
    out, err, rc = dev.otter("status", check=True)
    assert "no redundant copy" in err


def test_status_never_reports_a_lost_activation_as_pending(dev):
    """Issue 8: when the boot environment no longer puts the activated slot first (U-Boot
    fell back to its default environment after a torn write, or someone changed it), status
    says activation-lost rather than pending-reboot."""
    data = image(300 * 1024, 7)
    dev.install(data, version="2.0")
    assert dev.status()["update"] == "pending-reboot"
    if dev.bootloader == "uboot":
        run(["fw_setenv", "-c", dev.env_path, "BOOT_ORDER", "A B"], check=True)
    else:
        run(["grub-editenv", dev.env_path, "set", "ORDER=A B"], check=True)
    st = dev.status()
    assert st["update"] == "activation-lost" and st["activated"] == "B"
    assert st["booted"] == "A" and st["primary"] == "A"
    out, _, _ = dev.otter("status", check=True)
    assert "no longer puts it first" in out
    dev.otter("mark-active", "B", check=True)
    assert dev.status()["update"] == "pending-reboot"


def test_interop_grub_tools(tmp_path):
    dev = Device(tmp_path, "grub")
    ge = ["grub-editenv", dev.env_path]
    run(ge + ["set", "ORDER=B A", "B_TRY=1", "A_OK=0", "other=keep me"], check=True)
    with open(dev.cmdline, "w") as f:
        f.write("otter.slot=B\n")
    st = dev.status()
    assert st["primary"] == "B"
    assert [s["tries-left"] for s in st["slots"]] == [0, 2]
    assert st["slots"][0]["state"] == "bad"
    dev.otter("mark-good", check=True)
    dev.otter("mark-active", "A", check=True)
    out, _, _ = run(ge + ["list"], check=True)
    lines = set(out.splitlines())
    assert {"ORDER=A B", "A_OK=1", "A_TRY=0", "B_TRY=0", "other=keep me",
            "saved_entry=0"} <= lines
    assert os.path.getsize(dev.env_path) == 1024
    # A value with the characters GRUB escapes survives otter's rewrite.
    run(ge + ["set", "odd=a\\b"], check=True)
    dev.otter("mark-good", "A", check=True)  # a slot to fall back to (otherwise refused)
    dev.otter("mark-bad", "B", check=True)
    out, _, _ = run(ge + ["list"], check=True)
    assert "odd=a\\b" in out.splitlines() and "ORDER=A" in out.splitlines()


def test_grub_script_syntax():
    run(["grub-script-check", os.path.join(SOURCE_DIR, "contrib", "grub", "grub.cfg")],
        check=True)


def test_boot_scripts_use_the_variables():
    """The shipped scripts and the simulator share the variable names and defaults."""
    uboot = open(os.path.join(SOURCE_DIR, "contrib", "uboot", "boot.cmd")).read()
    grub = open(os.path.join(SOURCE_DIR, "contrib", "grub", "grub.cfg")).read()
    for s in ("BOOT_ORDER", "BOOT_A_LEFT", "BOOT_B_LEFT", 'setenv BOOT_ORDER "A B"',
              "otter.slot=${otter_slot}", "setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1",
              "otter_tries=3", "saveenv", "reset", "&& booti"):
        assert s in uboot, s
    for s in ('set ORDER="A B"', "set A_OK=1", "set A_TRY=0", "save_env A_TRY B_TRY",
              "otter.slot=${otter_slot}", '"${A_TRY}" -lt "${otter_tries}"',
              "set otter_tries=3", "reboot", "set fallback=1"):
        assert s in grub, s


# ---- CLI surface ----

def test_cli_usage(tmp_path):
    dev = Device(tmp_path, "grub")
    for cmd in ("status", "install", "mark-good", "mark-bad", "mark-active"):
        out, _, rc = dev.otter(cmd, "--help")
        assert rc == 0 and "Usage: otter " + cmd in out
    out, _, rc = dev.otter("--help")
    assert rc == 0 and "mark-active" in out
    assert dev.otter("frobnicate")[2] == 2
    assert dev.otter("mark-active")[2] == 2
    assert dev.otter("status", "extra")[2] == 2
    _o, err, rc = dev.otter("mark-active", "C")
    assert rc == 1 and "neither a bootname nor a slot name" in err
    # Configuration errors name file, line and key.
    with open(dev.conf, "a") as f:
        f.write("colour=blue\n")
    _o, err, rc = dev.otter("status")
    n = sum(1 for _ in open(dev.conf))
    assert rc == 1 and f"{dev.conf}:{n}: colour: unknown key in [slot.rootfs.1]" in err
    _o, err, rc = run([dev.otter_exe, "--config", str(tmp_path / "none.conf"), "status"])
    assert rc == 1 and "does not exist" in err


def test_progress_output(dev):
    img = image(3_000_000, 11)
    _out, err, _rc = dev.install(img, check=True)
    assert "progress: 100% (3000000 of 3000000 bytes" in err
    if not shutil.which("script"):
        pytest.skip(reason="util-linux 'script' (a pseudo-terminal) not installed")
    path = dev.write_image(img)
    cmd = (f"{dev.otter_exe} --config {dev.conf} install {path} --class rootfs --sha256 "
           f"{sha256(img)} --length {len(img)}")
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stdout
    assert b"\r  rootfs   [" in p.stdout and b"#] 100%" in p.stdout and b"MB/s" in p.stdout
    assert b"progress:" not in p.stdout  # the terminal form, not the plain lines


def test_status_text(dev):
    out, _, _ = dev.otter("status", check=True)
    assert "booted:  A" in out and "primary: A" in out
    assert "slot rootfs.0 (bootname A" in out and "state: good, booted" in out
    st = dev.status()
    assert st["slots"][0]["state"] == "good"
    assert st["slots"][1]["state"] == "unknown"  # never confirmed, but bootable


# ---- real ext4 on loop devices ----

def loop_devices_usable():
    if os.getuid() != 0 or not shutil.which("losetup"):
        return False
    try:
        p = subprocess.run(["losetup", "-f"], capture_output=True, text=True, timeout=10)
        return p.returncode == 0 and p.stdout.startswith("/dev/loop")
    except OSError:
        return False


@pytest.mark.skipif(not loop_devices_usable(),
                    reason="loop devices need root and a permitted losetup")
@pytest.mark.parametrize("bootloader", BOOTLOADERS)
def test_ext4_on_loop_devices(tmp_path, bootloader):
    dev = Device(tmp_path, bootloader, slot_size=8 * 1024 * 1024)
    loops = []
    try:
        for f in (dev.slot_a, dev.slot_b):
            out, _, _ = run(["losetup", "-f", "--show", f], check=True)
            loops.append(out.strip())
        conf = open(dev.conf).read().replace(f"device={dev.slot_a}", f"device={loops[0]}")
        conf = conf.replace(f"device={dev.slot_b}", f"device={loops[1]}")
        conf = conf.replace("type=raw", "type=ext4")
        open(dev.conf, "w").write(conf)
        dev.first_boot()
        # A real ext4 image with a file in it.
        root = tmp_path / "rootfs"
        root.mkdir()
        (root / "etc").mkdir()
        (root / "etc" / "os-release").write_text("VERSION_ID=5.0\n")
        img_path = tmp_path / "rootfs.ext4"
        run(["mkfs.ext4", "-q", "-F", "-d", str(root), "-L", "rootfs", str(img_path), "6M"],
            check=True, env={"E2FSPROGS_FAKE_TIME": "1700000000"})
        data = img_path.read_bytes()
        a_before = open(loops[0], "rb").read()
        dev.otter("install", str(img_path), "--class", "rootfs", "--sha256", sha256(data),
                  "--length", str(len(data)), "--version", "5.0", check=True)
        run(["e2fsck", "-fn", loops[1]], check=True)
        out, _, _ = run(["debugfs", "-R", "cat /etc/os-release", loops[1]], check=True)
        assert "VERSION_ID=5.0" in out
        assert open(loops[0], "rb").read() == a_before
        assert dev.sim.reboot() == "B"
        dev.otter("mark-good", check=True)
        assert dev.status()["update"] == "confirmed"
        # Now A is inactive; B (booted) is refused even under another name of its device.
        alias = tmp_path / "alias-of-b"
        os.symlink(loops[1], alias)
        conf = open(dev.conf).read().replace(f"device={loops[0]}", f"device={alias}")
        open(dev.conf, "w").write(conf)
        _o, err, rc = dev.otter("install", str(img_path), "--class", "rootfs", "--sha256",
                                sha256(data), "--length", str(len(data)))
        assert rc == 1 and "is the device of the booted slot" in err
    finally:
        for lo in loops:
            subprocess.run(["losetup", "-d", lo])


@pytest.mark.parametrize("bootloader", BOOTLOADERS)
def test_ext4_type_checked(tmp_path, bootloader):
    dev = Device(tmp_path, bootloader)
    conf = open(dev.conf).read().replace("type=raw", "type=ext4")
    open(dev.conf, "w").write(conf)
    dev.first_boot()
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello").write_text("hi\n")
    img_path = tmp_path / "rootfs.ext4"
    run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(img_path), "2M"], check=True)
    data = img_path.read_bytes()
    # A raw image for another class: refused before anything changes.
    other = image(len(data), 12)
    env0, b0, st0 = dev.env_bytes(), dev.slot_bytes("B"), open(dev.state, "rb").read()
    _o, err, rc = dev.install(other, check=None)
    assert rc == 1 and "type=ext4, but the image has no ext4 superblock" in err
    assert (dev.env_bytes(), dev.slot_bytes("B"), open(dev.state, "rb").read()) == \
        (env0, b0, st0)
    dev.install(data, version="ext4")
    b = os.path.join(dev.base, "b-copy.ext4")
    open(b, "wb").write(dev.slot_bytes("B")[:len(data)])
    run(["e2fsck", "-fn", b], check=True)
    out, _, _ = run(["debugfs", "-R", "cat /hello", b], check=True)
    assert out.strip() == "hi"


@pytest.mark.parametrize("bootloader", BOOTLOADERS)
def test_several_classes_switch_together(tmp_path, bootloader):
    """kernel and rootfs slots share bootnames: both B slots are written, one activation
    switches both, and an incomplete kernel install blocks the switch."""
    dev = Device(tmp_path, bootloader)
    for name in ("kernel-a.img", "kernel-b.img"):
        with open(tmp_path / name, "wb") as f:
            f.write(b"\x00" * (1024 * 1024))
    with open(dev.conf, "a") as f:
        f.write(f"\n[slot.kernel.0]\ndevice={tmp_path / 'kernel-a.img'}\nbootname=A\n"
                f"\n[slot.kernel.1]\ndevice={tmp_path / 'kernel-b.img'}\nbootname=B\n")
    dev.first_boot()
    kernel, rootfs = image(300_000, 20), image(700_000, 21)
    kpath = dev.write_image(kernel, "kernel.bin")
    # A kernel install cut short (a wrong hash): B's kernel slot is incomplete ...
    dev.otter("install", kpath, "--class", "kernel", "--sha256", "1" * 64, "--length",
              str(len(kernel)), "--no-activate", check=False)
    # ... so the rootfs install writes and verifies, but refuses to switch B.
    _o, err, rc = dev.install(rootfs, check=None)
    assert rc == 1 and "slot kernel.1 holds an incomplete install" in err
    assert dev.status()["primary"] == "A"
    assert dev.sim.pick_without_writing() == "A"
    # Done properly: kernel first without activation, then rootfs, which activates B.
    dev.otter("install", kpath, "--class", "kernel", "--sha256", sha256(kernel), "--length",
              str(len(kernel)), "--no-activate", "--version", "k2", check=True)
    assert dev.status()["primary"] == "A"
    dev.install(rootfs, version="r2")
    st = dev.status()
    assert st["primary"] == "B"
    by_name = {s["name"]: s for s in st["slots"]}
    assert by_name["kernel.1"]["version"] == "k2" and by_name["rootfs.1"]["version"] == "r2"
    assert open(tmp_path / "kernel-b.img", "rb").read()[:len(kernel)] == kernel
    assert dev.sim.reboot() == "B"
    dev.otter("mark-good", check=True)
    st = dev.status()
    assert all(s["state"] == "good" for s in st["slots"] if s["bootname"] == "B")
    assert dev.slot_bytes("A") == PATTERN_A


# ---- the GRUB script in real GRUB (grub-emu) against the simulator ----

def run_grub_emu(tmp_path, cfg, env):
    """Runs cfg in grub-emu with a grubenv holding env, on an ext2 disk image (GRUB's
    save_env needs a real filesystem); returns (booted slot or None, env afterwards)."""
    root = tmp_path / "root"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    ge = root / "grubenv"
    run(["grub-editenv", str(ge), "create"], check=True)
    if env:
        run(["grub-editenv", str(ge), "set"] + [f"{k}={v}" for k, v in env.items()],
            check=True)
    (root / "grub.cfg").write_text(cfg)
    disk = tmp_path / "disk.img"
    if disk.exists():
        disk.unlink()
    run(["mkfs.ext2", "-q", "-d", str(root), str(disk), "4M"], check=True)
    (tmp_path / "device.map").write_text(f"(hd0) {disk}\n")
    p = subprocess.run(["grub-emu", "-d", "/", "-r", "hd0", "-m", str(tmp_path / "device.map")],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    out = p.stdout.decode("latin-1")
    import re
    m = re.search(r"OTTER_SLOT=([A-Za-z0-9_]*);", out)
    assert "error:" not in out, out
    dumped = tmp_path / "grubenv.after"
    run(["debugfs", "-R", f"dump /grubenv {dumped}", str(disk)], check=True)
    after = {}
    for line in dumped.read_bytes().decode().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            after[k] = v
    return (m.group(1) or None) if m else None, after


@pytest.mark.skipif(not shutil.which("grub-emu"), reason="grub-emu (Debian grub-emu) missing")
def test_grub_script_in_grub_emu_matches_simulator(tmp_path):
    from bootsim import BootSim
    shipped = open(os.path.join(SOURCE_DIR, "contrib", "grub", "grub.cfg")).read()
    # The script as shipped up to its menu entry; then report the choice and stop.
    cfg = shipped[:shipped.index("menuentry")] + 'echo "OTTER_SLOT=${otter_slot};"\nhalt\n'
    assert "reboot" in cfg  # the no-slot branch ends grub-emu through the shipped reboot
    states = [
        {},
        {"ORDER": "B A", "B_OK": "1", "B_TRY": "0"},
        {"ORDER": "B A", "B_OK": "1", "B_TRY": "2"},
        {"ORDER": "B A", "B_OK": "1", "B_TRY": "3", "A_TRY": "1"},
        {"ORDER": "B A", "B_OK": "0", "B_TRY": "0"},
        {"ORDER": "A", "A_TRY": "3"},
        {"ORDER": "B A", "A_TRY": "8", "B_TRY": "3"},
        {"ORDER": "", "A_OK": "0"},
        {"ORDER": "B A", "B_TRY": "7"},
    ]
    seen = set()
    for tries in (3, 9):
        sim = BootSim("grub", "unused", "unused", tries=tries)
        script = cfg.replace("set otter_tries=3", f"set otter_tries={tries}")
        for st in states:
            want_slot, saved = sim._grub_pick(dict(st))
            slot, after = run_grub_emu(tmp_path, script, st)
            assert slot == want_slot, (tries, st, slot, want_slot)
            seen.add(slot)
            for k, v in saved.items():
                assert after.get(k) == v, (tries, st, k, after.get(k), v)
            for k, v in st.items():  # the script writes nothing but the TRY counters
                if not k.endswith("_TRY"):
                    assert after.get(k) == v, (tries, st, k)
    assert seen == {"A", "B", None}  # every outcome was exercised


@pytest.mark.skipif(not shutil.which("grub-emu"), reason="grub-emu (Debian grub-emu) missing")
def test_grub_script_reboots_when_the_kernel_cannot_be_loaded(tmp_path):
    """The whole shipped script, menu entries included, in grub-emu, where the slot's
    partition does not exist: loading the kernel fails, and instead of GRUB's menu waiting
    for a key (with the try counted) the fallback entry reboots at once, which ends
    grub-emu. tests/e2e/test_grub.py does the same on a real disk in QEMU."""
    shipped = open(os.path.join(SOURCE_DIR, "contrib", "grub", "grub.cfg")).read()
    root = tmp_path / "root"
    root.mkdir()
    run(["grub-editenv", str(root / "grubenv"), "create"], check=True)
    (root / "grub.cfg").write_text(shipped)
    disk = tmp_path / "disk.img"
    run(["mkfs.ext2", "-q", "-d", str(root), str(disk), "4M"], check=True)
    (tmp_path / "device.map").write_text(f"(hd0) {disk}\n")
    p = subprocess.run(["grub-emu", "-d", "/", "-r", "hd0", "-m", str(tmp_path / "device.map")],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    out = p.stdout.decode("latin-1")
    assert "otter: slot A did not boot; rebooting" in out, out
    assert "Failed to boot both default and fallback entries" not in out, out
    dumped = tmp_path / "grubenv.after"
    run(["debugfs", "-R", f"dump /grubenv {dumped}", str(disk)], check=True)
    assert "A_TRY=1" in dumped.read_text()  # the failed attempt was counted


def test_mark_bad_keeps_something_bootable(dev):
    """Issue 8, finding 4: otter mark-bad refuses to take the booted slot out of the boot
    order while no other slot could boot instead (a factory image in A, nothing ever written
    to B), changing nothing; once B holds an installed image, it marks A bad."""
    env, state = dev.env_bytes(), open(dev.state, "rb").read()
    for args in ((), ("A",), ("rootfs.0",)):
        _, err, rc = dev.otter("mark-bad", *args)
        assert rc == 1
        assert "refusing to take the booted slot A out of the boot order" in err
        assert "B: never written by otter nor confirmed with mark-good" in err
        assert "otter mark-good B" in err
        assert dev.env_bytes() == env and open(dev.state, "rb").read() == state
    # B taken out of the order: the reason says so.
    dev.otter("mark-bad", "B", check=True)
    _, err, rc = dev.otter("mark-bad")
    assert rc == 1 and "B: not in the boot order with tries left" in err
    assert dev.status()["slots"][0]["in-order"]
    # B written and verified (and activated): A may go.
    img = image(300_000, 4)
    dev.install(img)
    dev.otter("mark-bad", "A", check=True)
    st = dev.status()
    assert not st["slots"][0]["in-order"] and st["slots"][1]["in-order"]
    assert dev.sim.reboot() == "B"
    # Booted B with A out of the order: B may not go now.
    _, err, rc = dev.otter("mark-bad")
    assert rc == 1 and "booted slot B" in err and "A: not in the boot order" in err
