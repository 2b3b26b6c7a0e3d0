#!/usr/bin/python3
"""Regenerates the seed corpus of fuzz-director-admin (fuzz/corpus/director-admin/): one
request per admin operation as the CLI builds them, and a few refused ones. Each file is the
operation name, a newline and the JSON body."""
import hashlib
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "director-admin")

SEEDS = [
    ("assign", {"target": "releases/acme/1.2.0.json", "tags": ["beta"]}),
    ("assign", {"target": "releases/acme/1.2.0.json", "devices": ["car-1", "car-2"],
                "hardware_ids": ["modem-v2"]}),
    ("rollout.create", {"id": "r1", "target": "releases/acme/1.2.0.json", "tags": ["fleet"],
                        "phases": [10, "10%", "50%", "100%"], "success_threshold": 90,
                        "failure_threshold": 5, "min_reports": 20, "device_cap": 1000}),
    ("rollout.create", {"id": "r2", "target": "../x", "devices": ["a", "a"],
                        "phases": ["50%", "10%"]}),
    ("rollout.pause", {"id": "r1"}),
    ("rollout.resume", {"id": "r1"}),
    ("rollout.cancel", {"id": "r1"}),
    ("rollout.retry-failed", {"id": "r1"}),
    ("rollout.status", {"id": "r1"}),
    ("rollout.list", {"state": "running", "limit": 10, "offset": 0}),
    ("fleet", {"tag": "beta", "hardware_id": "main-board", "limit": 1000, "offset": 5}),
    ("fleet", {"limit": 1001}),
    ("rollout.status", {"id": "r1", "extra": True}),
    ("nope", {}),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    for op, body in SEEDS:
        data = op.encode() + b"\n" + json.dumps(body).encode()
        name = hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
