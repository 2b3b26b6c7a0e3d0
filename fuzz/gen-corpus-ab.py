#!/usr/bin/python3
"""Regenerates the seed corpora of the A/B parsers (fuzz/corpus/config, fuzz/corpus/grubenv):
valid files of every shape the parsers accept and near misses of each rule."""
import hashlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def save(name, data):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


EXAMPLE = b"""[system]
compatible=acme-gateway          # which images this device accepts
bootloader=uboot                 # uboot | grub
data-directory=/var/lib/otter
cmdline=/proc/cmdline            # where otter.slot=<bootname> of the booted slot is read

[bootloader]
fw-env-config=/etc/fw_env.config # uboot: libubootenv configuration
grubenv=/boot/grub/grubenv       # grub
tries=3                          # boot attempts granted to a newly activated slot

[slot.rootfs.0]
device=/dev/mmcblk0p2            # block device or regular file
type=ext4                        # raw | ext4
bootname=A

[slot.rootfs.1]
device=/dev/mmcblk0p3
type=ext4
bootname=B
"""
save("config", EXAMPLE)
save("config", EXAMPLE.replace(b"uboot  ", b"grub   ").replace(b"\n", b"\r\n"))
save("config", b"[system]\ncompatible=x\nbootloader=grub\n"
               b"[slot.kernel.0]\ndevice=/k0\nbootname=A\n[slot.kernel.1]\ndevice=/k1\nbootname=B\n"
               b"[slot.rootfs.0]\ndevice=/r0\ntype=raw\nbootname=A\n"
               b"[slot.rootfs.1]\ndevice=/r1\nbootname=B\n")
for broken in (b"[system\n", b"[system]\nfoo=bar\n", b"key=value\n", b"[slot.x]\n",
               b"[system]\ncompatible=x\ncompatible=y\n", b"[bootloader]\ntries=10\n",
               b"[slot.rootfs.99]\ndevice=/a\n", b"[system]\ncompatible=\x01\n",
               b"; only a comment\n# another\n", b"[update]\nserver=x\n"):
    save("config", broken)


def grubenv(pairs, raw=b""):
    body = b"# GRUB Environment Block\n"
    for k, v in pairs:
        body += k + b"=" + v.replace(b"\\", b"\\\\").replace(b"\n", b"\\\n") + b"\n"
    body += raw
    return body + b"#" * (1024 - len(body))


save("grubenv", grubenv([]))
save("grubenv", grubenv([(b"ORDER", b"B A"), (b"A_OK", b"1"), (b"A_TRY", b"0"),
                         (b"B_OK", b"1"), (b"B_TRY", b"2")]))
save("grubenv", grubenv([(b"saved_entry", b"Debian GNU/Linux"), (b"odd", b"a\\b\nc")]))
save("grubenv", grubenv([], raw=b"novalue\n"))
save("grubenv", grubenv([], raw=b"a=1\na=2\n"))
save("grubenv", grubenv([(b"v", b"x" * 990)]))
save("grubenv", b"# GRUB Environment Block\n" + b"x" * 999)
save("grubenv", b"# GRUB Environment Block\n")
print("corpus written to", os.path.join(HERE, "corpus"))

# slots.json, the A/B bookkeeping on the data partition (src/lib/slot/state.c)
H = "0123456789abcdef" * 4
SLOTS = ('{"format": 1, "activated": "B", "activated-at": "2026-01-02T03:04:05Z",'
         ' "slots": {"rootfs.1": {"status": "installed", "version": "1.2.3", "sha256": "%s",'
         ' "size": 4096, "written-sha256": "%s", "written-size": 4096,'
         ' "installed-at": "2026-01-02T03:04:00Z", "started-at": "2026-01-02T03:03:00Z"}},'
         ' "confirmed": {"A": true, "B": false},'
         ' "rolled-back": {"failed": "B", "booted": "A", "at": "2026-01-02T04:00:00Z"},'
         ' "events": [{"at": "2026-01-02T03:04:05Z", "event": "activate", "bootname": "B"}]}'
         % (H, H))
save("slots-state", SLOTS.encode())
save("slots-state", b'{"format": 1}')
save("slots-state", b'{"format": 1, "slots": {"rootfs.0": {"status": "installing"}}}')
save("slots-state", b'{"format": 2}')
save("slots-state", SLOTS.replace('"installed"', '"done"').encode())
save("slots-state", SLOTS.replace(H, H.upper(), 1).encode())
save("slots-state", b'{"format": 1, "confirmed": {"A": 1}}')
save("slots-state", b'{"format": 1, "format": 1}')
save("slots-state", b'{"format": 1, "events": [' + b",".join([b"{}"] * 51) + b"]}")
