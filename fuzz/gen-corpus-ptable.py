#!/usr/bin/python3
"""Regenerates the seed corpus of the partition-table parsers (fuzz/corpus/ptable): small
GPT and MBR disk images made by sfdisk, and near misses of each rule (torn copies, bad
CRCs, entry arrays out of range, MBR entries outside the disk)."""
import hashlib
import os
import struct
import subprocess
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 64 * 1024


def save(data):
    d = os.path.join(HERE, "corpus", "ptable")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def sfdisk(script):
    with tempfile.NamedTemporaryFile() as f:
        f.truncate(SIZE)
        subprocess.run(["/usr/sbin/sfdisk", "-q", f.name], input=script.encode(), check=True)
        return bytearray(open(f.name, "rb").read())


def fix_header_crc(img, lba):
    off = lba * 512
    size = struct.unpack_from("<I", img, off + 12)[0]
    struct.pack_into("<I", img, off + 16, 0)
    struct.pack_into("<I", img, off + 16, zlib.crc32(bytes(img[off:off + size])))


def main():
    gpt = sfdisk("label: gpt\nfirst-lba: 34\nstart=40, size=16\nstart=60, size=20\n")
    save(bytes(gpt))
    mbr = sfdisk("label: dos\nstart=8, size=16\nstart=30, size=40\n")
    save(bytes(mbr))
    last = SIZE // 512 - 1
    # Torn primary header, torn primary array, torn backup header.
    for off in (512 + 20, 1024 + 40, last * 512 + 30):
        m = bytearray(gpt)
        m[off] ^= 0xff
        save(bytes(m))
    # Huge entry count and entry size, with a correct header CRC.
    for field, value in ((80, 0xffffffff), (84, 8), (84, 0x10000), (72, 1 << 40), (24, 7),
                         (48, 1 << 50), (12, 600)):
        m = bytearray(gpt)
        struct.pack_into("<Q" if field in (24, 48, 72) else "<I", m, 512 + field, value)
        fix_header_crc(m, 1)
        save(bytes(m))
    # MBR: no signature, entry past the end, bad status, protective entry.
    for off, val in ((510, 0), (446 + 12, 0xff), (446, 0x12), (446 + 4, 0xee)):
        m = bytearray(mbr)
        m[off] = val
        save(bytes(m))
    save(b"")
    save(bytes(512))


if __name__ == "__main__":
    main()
