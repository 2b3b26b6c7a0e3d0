"""otter's canonical JSON and key ids against an independent implementation: Debian's
python3-securesystemslib (encode_canonical) and python3-cryptography."""

import hashlib
import json
import random

import pytest
from securesystemslib.formats import encode_canonical

from conftest import binary, run
from tufrepo import Key

TOOL = None


def otter(mode, data):
    global TOOL
    TOOL = TOOL or binary("otter-json-tool")
    import subprocess
    p = subprocess.run([TOOL, mode], input=data, capture_output=True)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout


CASES = [
    # the tuf.md §5 worked example
    '{"b":1, "a":"x\\"y\\\\z\\n\\u00e9\\u0001", "\\u00e9":true, "Z":[null,false,-3,{}], "aa":[]}',
    '{"keys": {"b": 1, "a": 2, "A": 3, "_": 4, "~": 5, "\\u00e9": 6, "\\ud83d\\ude00": 7}}',
    '{"s": "/slash and \\t tab and \\u007f del and \\u2028 separator"}',
    '{"n": [0, -0, 1, -1, 9007199254740993, -9223372036854775808, 9223372036854775807]}',
    '{"deep": {"a": {"b": {"c": [[[{"d": null}]]]}}}, "empty": {}, "arr": []}',
    '{"unicode": "\\u65e5\\u672c\\u8a9e", "emoji": "\\ud83e\\udd9c", "mixed": "a\\u0000b"}',
]


@pytest.mark.parametrize("text", CASES)
def test_canonical_json_matches_securesystemslib(text):
    if "\\u0000" in text:
        # NUL is refused by otter's strict intake (it cannot be represented safely).
        import subprocess
        p = subprocess.run([binary("otter-json-tool"), "canonical"], input=text.encode(),
                           capture_output=True)
        assert p.returncode == 1
        return
    expected = encode_canonical(json.loads(text)).encode("utf-8")
    assert otter("canonical", text.encode()) == expected


def random_value(rng, depth=0):
    kind = rng.randrange(7 if depth < 4 else 4)
    if kind == 0:
        return rng.randrange(-2**63, 2**63)
    if kind == 1:
        alphabet = 'ab"\\/\n\t\x01 \u00e9\u65e5\U0001f600~{}[]:,'
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(8)))
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.randrange(100)
    if kind in (4, 5):
        return {"".join(rng.choice("abcAB_\u00e9\U0001f600") for _ in range(rng.randrange(1, 5))):
                random_value(rng, depth + 1) for _ in range(rng.randrange(5))}
    return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]


def test_canonical_json_random_documents():
    rng = random.Random(20261129)
    for _ in range(200):
        doc = {"signed": random_value(rng)}
        text = json.dumps(doc, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1]))
        expected = encode_canonical(doc).encode("utf-8")
        assert otter("canonical", text.encode()) == expected, text


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_keyids_match_securesystemslib(kind):
    key = Key(kind)
    expected = hashlib.sha256(encode_canonical(key.public).encode()).hexdigest()
    assert otter("keyid", json.dumps(key.public).encode()).decode().strip() == expected
    # Extra members are part of the keyid (full-object rule).
    extended = dict(key.public, keyid_hash_algorithms=["sha256", "sha512"],
                    **{"x-tuf-on-ci-keyowner": "@someone"})
    expected = hashlib.sha256(encode_canonical(extended).encode()).hexdigest()
    assert otter("keyid", json.dumps(extended).encode()).decode().strip() == expected


def test_spec_example_keyids():
    key = {"keytype": "ed25519", "scheme": "ed25519",
           "keyval": {"public": "72378e5bc588793e58f81c8533da64a2e8f1565c1fcc7f253496394ffc52542c"}}
    out = otter("keyid", json.dumps(key).encode()).decode().strip()
    assert out == "1bf1c6e3cdd3d3a8420b19199e27511999850f4b376c4547b2f32fba7e80fca3"
    assert out == hashlib.sha256(encode_canonical(key).encode()).hexdigest()


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_signatures_from_cryptography_verify_in_otter(kind):
    key = Key(kind)
    signed = {"_type": "root", "spec_version": "1.0.31", "version": 1,
              "expires": "2035-01-01T00:00:00Z", "consistent_snapshot": True,
              "keys": {key.keyid: key.public},
              "roles": {r: {"keyids": [key.keyid], "threshold": 1}
                        for r in ("root", "timestamp", "snapshot", "targets")},
              "x-note": "caf\u00e9 \u65e5\u672c"}
    env = {"signatures": [{"keyid": key.keyid, "sig": key.sign(
        encode_canonical(signed).encode())}], "signed": signed}
    otter("verify", json.dumps(env, indent=4).encode())
    # A one-bit change in the signed content breaks it.
    signed["x-note"] = "cafe"
    import subprocess
    p = subprocess.run([binary("otter-json-tool"), "verify"], input=json.dumps(env).encode(),
                       capture_output=True)
    assert p.returncode == 1
    assert b"valid signature" in p.stderr
