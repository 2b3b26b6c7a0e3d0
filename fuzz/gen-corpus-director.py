#!/usr/bin/python3
"""Regenerates the seed corpus of fuzz-director-manifest (fuzz/corpus/director-manifest/):
manifests as the test device client (tests/director/client.py) makes them, with and without
installation reports, a few broken ones, and Otter-Signature header values."""
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "director"))
from client import Device, signature_header  # noqa: E402


def save(data):
    d = os.path.join(HERE, "corpus", "director-manifest")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


dev = Device("http://unused", "dev-1", secondaries=1)
dev2 = Device("http://unused", "dev-2", kind="ecdsa")
ok = {"correlation_id": "c-1", "result": {"success": True, "code": "OK", "description": ""}}
bad = {"correlation_id": "c-2", "result": {"success": False, "code": "HEALTH",
                                           "description": "service down"},
       "items": [{"ecu": "dev-1-p", "result": {"success": False, "code": "HEALTH",
                                               "description": "service down"}}]}
for doc in (dev.manifest(), dev.manifest(report=ok), dev.manifest(report=bad),
            dev2.manifest(), dev.manifest(ecus=[dev.primary])):
    save(json.dumps(doc).encode())
    save(json.dumps(doc, indent=1, sort_keys=True).encode())
m = dev.manifest()
m["signed"]["ecu_version_manifests"]["dev-1-p"]["signed"]["report_counter"] = "7"
save(json.dumps(m).encode())
save(b'{"signatures": [], "signed": {}}')
save(b"[]")
save(signature_header(dev.primary.key, "PUT", "/director/v1/manifest", b"{}").encode())
save(signature_header(dev2.primary.key, "GET", "/director/v1/metadata/timestamp.json",
                      b"").encode())
