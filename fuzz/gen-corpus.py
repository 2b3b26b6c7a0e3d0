#!/usr/bin/python3
"""Regenerates the seed corpora in fuzz/corpus/ from repositories built in code
(tests/integration/tufrepo.py). Fuzzing adds to them; crashes found become files here too."""
import hashlib
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from tufrepo import Key, Repository  # noqa: E402


def save(name, data):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


with tempfile.TemporaryDirectory() as tmp:
    repo = Repository(os.path.join(tmp, "r"),
                      key_types={"root": ["ed25519", "ecdsa", "rsa"], "targets": "ecdsa"},
                      thresholds={"root": 2})
    repo.snapshot_hashes = repo.timestamp_hashes = True
    repo.add_target("a/b/c.txt", b"hello", custom={"version": "1.2"},
                    hash_algs=("sha256", "sha512"))
    repo.add_delegation("targets", "team", paths=["a/*/*.txt", "b/?"], terminating=True)
    repo.add_delegation("targets", "bins-classic", prefixes=["00", "8f", "ff"])
    repo.add_target("a/x/y.txt", b"team", role="team")
    repo.update("team", "bins-classic", "targets")
    for role in ("root", "timestamp", "snapshot", "targets", "team"):
        kind = "targets" if role == "team" else role
        save("tuf-" + kind, repo.serialise(role))
    repo2 = Repository(os.path.join(tmp, "s"))
    repo2.add_succinct_delegation("targets", 3)
    repo2.update("targets")
    save("tuf-targets", repo2.serialise("targets"))
    # Malformed neighbours: wrong type, duplicate keys, floats, bad signatures.
    env = repo.envelope("timestamp")
    save("tuf-timestamp", json.dumps(env).replace('"timestamp"', '"snapshot"', 1).encode())
    save("tuf-timestamp", b'{"signed":{"_type":"timestamp","version":1.5},"signatures":[]}')
    save("tuf-root", b'{"signatures":[{"keyid":"a","sig":"zz"},{"keyid":"a","sig":"00"}],'
                     b'"signed":{"_type":"root","version":1,"version":2}}')
    save("tuf-snapshot", b'{"signatures":[],"signed":{"_type":"snapshot","spec_version":"1.0",'
                         b'"version":1,"expires":"2030-01-01T00:00:00Z","meta":'
                         b'{"targets.json":{"version":1,"length":-1}}}}')
    for s in (b'{"b":1,"a":"x\\"y\\\\z\\n\\u00e9\\u0001","\\u00e9":true,"Z":[null,false,-3,{}],'
              b'"aa":[]}', b'{"a":[1.5,1e10,-0]}', b'{"\\ud83d\\ude00":{"x":[[[[]]]]}}',
              b'{"k":"\\/\\t"}'):
        save("canonical-json", s)
print("corpus written to", os.path.join(HERE, "corpus"))
