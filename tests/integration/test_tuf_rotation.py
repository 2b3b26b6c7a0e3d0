"""Root rotation (spec 5.3) and rotation of the other roles' keys, through otter-tuf."""

import copy

from tufclient import setup  # noqa: F401 (fixture)
from tufrepo import Key


def test_root_key_replaced_needs_old_and_new(setup):
    repo, client = setup(key_types={"root": "rsa"})
    old = repo.signers["root"][0]
    new = Key("ecdsa")
    saved = copy.deepcopy(repo.signed["root"])
    # Signed only by the new key: the trusted root's threshold is not met.
    repo.rotate_root(add=[new], remove=[old], sign_with_old=[], sign_with_new=[new])
    assert client.refresh() == 1
    assert client.version("root") == 1
    # Signed by both: accepted.
    repo.signed["root"] = saved
    repo.signers["root"] = [old]
    repo.rotate_root(add=[new], remove=[old])
    assert client.refresh() == 0
    assert client.version("root") == 2


def test_root_rotation_signed_by_old_keys_only_fails(setup):
    repo, client = setup()
    old = repo.signers["root"][0]
    new = Key()
    repo.rotate_root(add=[new], remove=[old], sign_with_old=[old], sign_with_new=[])
    assert client.refresh() == 1
    assert client.version("root") == 1


def test_threshold_raised_and_chain_of_rotations(setup):
    repo, client = setup(key_types={"root": ["ed25519", "ecdsa", "rsa"]})
    k4, k5 = Key(), Key("rsa")
    repo.rotate_root(threshold=2)                 # v2: 2-of-3
    repo.rotate_root(add=[k4], threshold=3)       # v3: 3-of-4
    old0 = repo.signers["root"][0]
    repo.rotate_root(add=[k5], remove=[old0])     # v4: one key replaced, still 3-of-4
    repo.update("targets")
    assert client.refresh() == 0
    assert client.version("root") == 4


def test_lowering_threshold_still_needs_old_threshold(setup):
    repo, client = setup(key_types={"root": ["ed25519", "ed25519"]}, thresholds={"root": 2})
    a, b = repo.signers["root"]
    # v2 lowers the threshold to 1 but carries only one signature: v1 demands 2.
    repo.rotate_root(threshold=1, sign_with_old=[a], sign_with_new=[a])
    assert client.refresh() == 1
    assert client.version("root") == 1
    repo.signed["root"]["version"] -= 1
    repo.rotate_root(threshold=1, sign_with_old=[a, b], sign_with_new=[a])
    assert client.refresh() == 0
    assert client.version("root") == 2


def test_unused_extra_signatures_are_ignored(setup):
    repo, client = setup()
    stranger = Key("ecdsa")
    repo.rotate_root(sign_with_new=repo.signers["root"] + [stranger])
    assert client.refresh() == 0
    assert client.version("root") == 2


def test_targets_key_rotation_revokes_old_key(setup):
    repo, client = setup()
    old = repo.signers["targets"][0]
    new = Key("ecdsa")
    repo.add_target("a", b"a")
    repo.update("targets")
    assert client.download("a") == 0
    repo.rotate_root(add=[new], remove=[old], role="targets")
    repo.add_target("b", b"b")
    repo.update("targets")
    assert client.download("b") == 0
    assert client.version("root") == 2
    # The revoked key can no longer sign targets.
    repo.signers["targets"] = [old]
    repo.add_target("c", b"c")
    repo.update("targets")
    assert client.download("c") == 1


def test_timestamp_key_rotation_and_type_change(setup):
    repo, client = setup(key_types={"timestamp": "rsa"})
    assert client.refresh() == 0
    new = Key("ecdsa")
    repo.rotate_root(add=[new], remove=repo.signers["timestamp"], role="timestamp")
    repo.update("targets")
    assert client.refresh() == 0
    assert client.version("timestamp") == 2


def test_many_rotations_in_one_refresh(setup):
    repo, client = setup()
    for _ in range(20):
        k = Key()
        repo.rotate_root(add=[k], remove=[repo.signers["root"][0]])
    assert client.refresh() == 0
    assert client.version("root") == 21
