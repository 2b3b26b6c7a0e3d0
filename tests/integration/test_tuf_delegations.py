"""Delegated targets through otter-tuf: search order, terminating roles, path patterns,
classic and succinct hash bins, role names that need escaping, the diamond case."""

import hashlib
import os

import pytest

from tufclient import setup  # noqa: F401 (fixture)
from tufrepo import Key, Repository


def role_requests(nginx):
    """Delegated roles fetched, in order (names as they appear in the URL)."""
    out = []
    for path, _status in nginx.requests():
        name = path.rsplit("/", 1)[-1]
        if "/metadata/" in path and name.count(".") >= 2:
            role = name.split(".", 1)[1][:-len(".json")]
            if role not in ("root", "snapshot", "targets", "timestamp"):
                out.append(role)
    return out


def test_preorder_depth_first_search(setup, nginx):
    repo, client = setup()
    # targets -> A, B ; A -> C, D ; target lives in D: visits A, C, D (never B).
    for parent, name in (("targets", "A"), ("targets", "B"), ("A", "C"), ("A", "D")):
        repo.add_delegation(parent, name, paths=["*"])
    repo.add_target("f", b"in D", role="D")
    repo.update("C", "D", "A", "B", "targets")
    assert client.refresh() == 0
    nginx.clear_log()
    assert client.download("f") == 0
    assert role_requests(nginx) == ["A", "C", "D"]


def test_terminating_delegation_stops_the_search(setup, nginx):
    repo, client = setup()
    repo.add_delegation("targets", "A", paths=["*"])
    repo.add_delegation("A", "C", paths=["*"], terminating=True)
    repo.add_delegation("A", "D", paths=["*"])
    repo.add_delegation("targets", "B", paths=["*"])
    repo.add_target("f", b"in B", role="B")
    repo.update("C", "D", "A", "B", "targets")
    assert client.refresh() == 0
    nginx.clear_log()
    assert client.download("f") == 1
    assert role_requests(nginx) == ["A", "C"]


@pytest.mark.parametrize("pattern,path,found", [
    ("releases/*/*.zip", "releases/1.0/fw.zip", True),
    ("releases/*/*.zip", "releases/fw.zip", False),
    ("releases/*", "releases/a/b", False),
    ("fw-?.bin", "fw-2.bin", True),
    ("fw-?.bin", "fw-10.bin", False),
    ("*.md", "README.md", True),
    ("*.md", "docs/README.md", False),
    ("README.md", "README.MD", False),
    ("[ab]/*", "b/x", True),
])
def test_path_patterns(setup, pattern, path, found):
    repo, client = setup()
    repo.add_delegation("targets", "team", paths=[pattern])
    repo.add_target(path, b"content", role="team")
    repo.update("team", "targets")
    assert client.download(path) == (0 if found else 1)


def test_delegation_chain_needs_every_pattern_to_match(setup):
    repo, client = setup()
    # targets -> B for releases/*/*, B -> D for releases/y/*: D's entry for releases/z/...
    # is outside B's grant to D, so it is not trusted.
    repo.add_delegation("targets", "B", paths=["releases/*/*"])
    repo.add_delegation("B", "D", paths=["releases/y/*"])
    repo.add_target("releases/y/a.zip", b"ok", role="D")
    repo.add_target("releases/z/b.zip", b"not ok", role="D")
    repo.update("D", "B", "targets")
    assert client.download("releases/y/a.zip") == 0
    assert client.download("releases/z/b.zip") == 1


def test_classic_hash_bins(setup):
    repo, client = setup()
    # 16 bins by first hex digit of sha256(path), path_hash_prefixes.
    key = Key()
    for i in range(16):
        repo.add_delegation("targets", f"bin-{i:x}", prefixes=[f"{i:x}"], keys=[key])
    paths = [f"pkg/{n}.tar" for n in range(20)]
    for p in paths:
        digit = hashlib.sha256(p.encode()).hexdigest()[0]
        repo.add_target(p, p.encode(), role=f"bin-{digit}")
    repo.update(*[f"bin-{i:x}" for i in range(16)], "targets")
    assert client.download(*paths[:10]) == 0
    assert len(client.targets()) == 10


@pytest.mark.parametrize("bits", [1, 4, 8])
def test_succinct_hash_bins(setup, nginx, bits):
    repo, client = setup()
    names = repo.add_succinct_delegation("targets", bits)
    paths = ["foo.tgz", "path/to/a/target_file.txt", "x"]
    used = set()
    for p in paths:
        b = Repository.bin_for(p, bits)
        used.add(b)
        repo.add_target(p, p.encode(), role=b)
    repo.update(*sorted(used), "targets")
    assert client.refresh() == 0
    nginx.clear_log()
    assert client.download(*paths) == 0
    fetched = role_requests(nginx)
    assert sorted(set(fetched)) == sorted(used)
    assert len(names) == 2 ** bits
    # A target placed in the wrong bin is not found.
    wrong = next(n for n in names if n != Repository.bin_for("elsewhere", bits))
    repo.add_target("elsewhere", b"e", role=wrong)
    repo.update(wrong)
    assert client.download("elsewhere") == 1


def test_succinct_bin_names_match_tuf_md_vectors():
    # tuf.md §3.5: foo.tgz -> B=4 bins-3, B=8 bins-34, B=10 bins-0d2, B=16 bins-34ba
    assert Repository.bin_for("foo.tgz", 4) == "bins-3"
    assert Repository.bin_for("foo.tgz", 10) == "bins-0d2"
    assert Repository.bin_for("path/to/a/target_file.txt", 10) == "bins-271"


@pytest.mark.parametrize("name,encoded", [
    ("a/b", "a%2Fb"), ("../escape", "..%2Fescape"), ("?", "%3F"), ("#", "%23"),
    ("with space", "with%20space"),
])
def test_role_names_are_escaped(setup, nginx, name, encoded):
    repo, client = setup()
    repo.add_delegation("targets", name, paths=["*"])
    repo.add_target("t", b"t", role=name)
    repo.update(name, "targets")
    assert client.refresh() == 0
    nginx.clear_log()
    assert client.download("t") == 0
    assert ("/repo/metadata/2." + encoded + ".json", 200) in nginx.requests()
    assert f"{encoded}.json" in client.files()
    # Nothing escaped the metadata folder.
    assert sorted(os.listdir(client.md.parent)) == ["client-metadata", "client-targets",
                                                    "nginx-state", "trusted-root.json", "www"]


def test_delegated_threshold_with_mixed_key_types(setup):
    repo, client = setup()
    keys = repo.add_delegation("targets", "team", paths=["*"],
                               key_kinds=("ecdsa", "rsa", "ed25519"), threshold=2)
    repo.add_target("t", b"t", role="team")
    repo.signers["team"] = keys[:1]
    repo.update("team", "targets")
    assert client.download("t") == 1
    repo.signers["team"] = keys[1:]
    repo.update("team")
    assert client.download("t") == 0


def test_diamond_role_is_verified_per_delegator(setup):
    repo, client = setup()
    repo.add_delegation("targets", "parent-a", paths=["team-a/*"])
    repo.add_delegation("targets", "parent-b", paths=["team-b/*"])
    keys_a = repo.add_delegation("parent-a", "release", paths=["team-a/*"])
    repo.add_delegation("parent-b", "release", paths=["team-b/*"])
    repo.signers["release"] = keys_a  # valid through parent-a only
    repo.add_target("team-a/app", b"trusted A", role="release")
    repo.add_target("team-b/app", b"malicious B", role="release")
    repo.update("release", "parent-a", "parent-b", "targets")
    assert client.download("team-a/app", "team-b/app") == 1
    assert client.targets() == ["team-a%2Fapp"]
    # Also in a later process, with "release" already stored locally.
    assert client.download("team-b/app") == 1
    assert client.targets() == ["team-a%2Fapp"]
