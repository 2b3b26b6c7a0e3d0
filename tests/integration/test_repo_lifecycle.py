"""otter-repo lifecycles driven through the CLI, with otter-tuf as the device, served by
nginx on 127.0.0.1: init, targets, offline threshold signing, publish, root rotation, online
key revocation, delegations, hash bins, expiry refresh, status and verify."""

import hashlib
import json
import os
import shutil
import subprocess

import pytest

from conftest import binary, run, needs_faketime
from otterrepo import OtterRepo, TufClient, make_repo, tree_state, write
from tufrepo import Repository, canonical


@pytest.fixture
def keys(tmp_path):
    d = tmp_path / "keys"
    return str(d)


def client_for(tmp_path, nginx, repo, name="client"):
    c = TufClient(tmp_path, nginx, name=name)
    assert c.init(os.path.join(repo.metadata, "1.root.json")) == 0
    return c


def test_init_add_publish_download(tmp_path, nginx, keys):
    repo = make_repo(nginx, keys)
    # Everything is published at once, consistent snapshot layout, pretty ASCII JSON.
    assert sorted(os.listdir(repo.metadata)) == ["1.root.json", "1.snapshot.json",
                                                  "1.targets.json", "root.json",
                                                  "timestamp.json"]
    root = repo.signed("1.root.json")
    assert root["consistent_snapshot"] is True
    assert root["spec_version"] == "1.0.31"
    assert sorted(root["roles"]) == ["root", "snapshot", "targets", "timestamp"]
    assert all(k["keytype"] == "ed25519" for k in root["keys"].values())
    for name in os.listdir(repo.metadata):
        data = repo.read(name)
        data.decode("ascii")
        assert data.endswith(b"}\n") and data.startswith(b'{\n "signatures"')
    # Private keys are 0600, public 0644, outside the repository.
    assert oct(os.stat(os.path.join(keys, "root-1.pem")).st_mode & 0o777) == "0o600"
    assert oct(os.stat(os.path.join(keys, "root-1.pub")).st_mode & 0o777) == "0o644"

    client = client_for(tmp_path, nginx, repo)
    assert client.refresh() == 0

    f1 = write(tmp_path / "in" / "image.bin", os.urandom(5000))
    f2 = write(tmp_path / "in" / "notes.txt", b"release notes\n")
    out, _, _ = repo("add-target", f1, f2, "--path", "images/v1/image.bin", "notes.txt",
                     "--custom", '{"version": "1.0", "hw": ["a", "b"], "n": 3}')
    assert "staged targets version 2" in out
    # Nothing is published before publish.
    assert not os.path.exists(os.path.join(repo.path, "targets", "images"))
    repo("publish", "--key", os.path.join(keys, "targets-1.pem"))
    assert repo.published_version("targets") == 2
    assert os.listdir(repo.staging) == ["targets"]
    assert os.listdir(os.path.join(repo.staging, "targets")) == []

    tg = repo.signed("2.targets.json")["targets"]
    data = open(f1, "rb").read()
    assert tg["images/v1/image.bin"]["length"] == 5000
    assert tg["images/v1/image.bin"]["hashes"] == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "sha512": hashlib.sha512(data).hexdigest()}
    assert tg["notes.txt"]["custom"] == {"version": "1.0", "hw": ["a", "b"], "n": 3}
    # One copy per hash, under the hash-prefixed names clients fetch.
    for alg in ("sha256", "sha512"):
        p = os.path.join(repo.path, "targets", "images", "v1",
                         f"{hashlib.new(alg, data).hexdigest()}.image.bin")
        assert open(p, "rb").read() == data
    # Snapshot and timestamp pin the exact published bytes.
    ts = repo.signed("timestamp.json")
    snap_bytes = repo.read("2.snapshot.json")
    assert ts["meta"]["snapshot.json"] == {
        "version": 2, "length": len(snap_bytes),
        "hashes": {"sha256": hashlib.sha256(snap_bytes).hexdigest(),
                   "sha512": hashlib.sha512(snap_bytes).hexdigest()}}
    t_bytes = repo.read("2.targets.json")
    assert repo.signed("2.snapshot.json")["meta"]["targets.json"]["hashes"]["sha256"] == \
        hashlib.sha256(t_bytes).hexdigest()

    assert client.download("images/v1/image.bin", "notes.txt") == 0
    assert client.target("images/v1/image.bin") == data
    assert client.version("targets") == 2

    # Replace one target and remove the other.
    write(f1, b"second image")
    repo("add-target", f1, "--path", "images/v1/image.bin")
    repo("remove-target", "notes.txt")
    repo("publish", "--key", os.path.join(keys, "targets-1.pem"))
    assert client.download("images/v1/image.bin") == 0
    assert client.target("images/v1/image.bin") == b"second image"
    assert client.download("notes.txt") != 0
    # verify agrees: everything published is accepted.
    out, _, _ = repo("verify", "--root", os.path.join(repo.metadata, "1.root.json"))
    assert "1 target accepted, 0 rejected" in out


def test_signatures_cross_check_with_securesystemslib(tmp_path, nginx, keys):
    """The signed message is securesystemslib's canonical JSON (an independent encoder)."""
    repo = make_repo(nginx, keys, "--key-type", "root=ecdsa-p256", "--key-type",
                     "targets=rsa-pss")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    root = json.loads(repo.read("root.json"))
    msg = canonical(root["signed"])
    key = root["signed"]["keys"][root["signed"]["roles"]["root"]["keyids"][0]]
    assert key["keytype"] == "ecdsa" and key["scheme"] == "ecdsa-sha2-nistp256"
    pub = serialization.load_pem_public_key(key["keyval"]["public"].encode())
    pub.verify(bytes.fromhex(root["signatures"][0]["sig"]), msg, ec.ECDSA(hashes.SHA256()))
    # Key ids are sha256 of the canonical key object.
    for kid, k in root["signed"]["keys"].items():
        assert hashlib.sha256(canonical(k)).hexdigest() == kid
    tg = json.loads(repo.read("1.targets.json"))
    tkey = root["signed"]["keys"][tg["signatures"][0]["keyid"]]
    assert tkey["scheme"] == "rsassa-pss-sha256"
    serialization.load_pem_public_key(tkey["keyval"]["public"].encode()).verify(
        bytes.fromhex(tg["signatures"][0]["sig"]), canonical(tg["signed"]),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
        hashes.SHA256())


def test_offline_signing_two_of_three(tmp_path, nginx, keys):
    repo = make_repo(nginx, keys, "--keys", "targets=3", "--threshold", "targets=2")
    client = client_for(tmp_path, nginx, repo)
    # Each targets key lives with its own holder, away from the release machine.
    holders = []
    for i in (1, 2, 3):
        h = tmp_path / f"holder{i}"
        h.mkdir()
        shutil.move(os.path.join(keys, f"targets-{i}.pem"), h / "targets.pem")
        holders.append(h)
    f = write(tmp_path / "fw.bin", b"firmware 2.0")
    repo("add-target", f)
    staged = os.path.join(repo.staging, "targets.json")
    st = repo.status()
    sigs = st["staged"]["targets"]["signatures"][0]
    assert (sigs["valid"], sigs["threshold"], len(sigs["missing"])) == (0, 2, 3)
    assert st["staged"]["targets"]["ready"] is False

    # Holder 1 signs a copy on "their" machine: sign needs only the file and the key.
    copy1 = holders[0] / "targets.json"
    shutil.copy(staged, copy1)
    out, _, _ = run([binary("otter-repo"), "sign", copy1, "--key",
                     holders[0] / "targets.pem"], check=True, cwd=str(holders[0]))
    assert "targets metadata version 2, 1 target" in out
    repo("import", copy1)
    # One signature is not enough: publish refuses and changes nothing.
    before = repo.state()
    _, err, _ = repo("publish", check=False)
    assert "1 valid signature, the threshold is 2" in err
    assert "keys without a valid signature" in err
    assert repo.state() == before
    # Holder 3 signs another copy (the one holder 1 returned, or the original: same content).
    copy3 = holders[2] / "targets.json"
    shutil.copy(staged, copy3)
    run([binary("otter-repo"), "sign", copy3, "--key", holders[2] / "targets.pem"], check=True)
    out, _, _ = repo("import", copy3)
    assert "1 new signature for staged targets" in out
    st = repo.status()
    assert st["staged"]["targets"]["ready"] is True
    assert st["staged"]["targets"]["signatures"][0]["valid"] == 2
    # publish needs no key here: snapshot and timestamp are online.
    repo("publish")
    assert client.download("fw.bin") == 0
    assert client.target("fw.bin") == b"firmware 2.0"
    published = json.loads(repo.read("2.targets.json"))
    assert len(published["signatures"]) == 2


def test_root_rotation_client_follows(tmp_path, nginx, keys):
    repo = make_repo(nginx, keys, "--keys", "root=2", "--threshold", "root=1")
    k = lambda n: os.path.join(keys, n)
    early = client_for(tmp_path, nginx, repo, "early")
    assert early.refresh() == 0
    offline = client_for(tmp_path, nginx, repo, "offline")  # never refreshes until the end

    # Replace root-2 by a new key and raise the threshold to 2.
    out, _, _ = run([binary("otter-repo"), "key", "gen", k("root-3")], check=True)
    new_id = out.strip().splitlines()[-1]
    out, _, _ = repo("rotate", "root", "--add-key", k("root-3.pub"), "--remove-key",
                     k("root-2.pub"), "--threshold", "2")
    assert "keys of the published root (old)" in out
    assert "still missing" in out and new_id in out
    # Old threshold alone is not enough: the new root's own threshold is 2.
    run([binary("otter-repo"), "sign", os.path.join(repo.staging, "root.json"), "--key",
         k("root-1.pem")], check=True)
    before = repo.state()
    _, err, _ = repo("publish", check=False)
    assert "signatures by its own root keys" in err and new_id[:16] in err
    assert repo.state() == before
    run([binary("otter-repo"), "sign", os.path.join(repo.staging, "root.json"), "--key",
         k("root-3.pem")], check=True)
    repo("publish")
    root2 = repo.signed("2.root.json")
    assert root2["roles"]["root"]["threshold"] == 2
    assert new_id in root2["roles"]["root"]["keyids"]
    assert repo.read("root.json") == repo.read("2.root.json")
    assert early.refresh() == 0
    assert early.version("root") == 2

    # A second rotation: root-1 out, root-4 in, threshold 2 kept (old keys: 1 and 3).
    out, _, _ = run([binary("otter-repo"), "key", "gen", k("root-4")], check=True)
    repo("rotate", "root", "--add-key", k("root-4.pub"), "--remove-key", k("root-1.pub"))
    repo("publish", "--key", k("root-1.pem"), k("root-3.pem"), k("root-4.pem"))
    assert sorted(n for n in os.listdir(repo.metadata) if n.endswith("root.json")) == [
        "1.root.json", "2.root.json", "3.root.json", "root.json"]
    # A device that slept through both walks the chain 1 -> 2 -> 3.
    f = write(tmp_path / "a.txt", b"after rotations")
    repo("add-target", f)
    repo("publish", "--key", k("targets-1.pem"))
    assert offline.download("a.txt") == 0
    assert offline.version("root") == 3
    assert early.refresh() == 0 and early.version("root") == 3
    # The removed root key can no longer sign a root on its own.
    repo("stage", "root")
    before = repo.state()
    _, err, _ = repo("publish", "--key", k("root-1.pem"), check=False)
    assert "signature" in err
    assert repo.state() == before


def test_timestamp_key_revoked_client_follows(tmp_path, nginx, keys):
    repo = make_repo(nginx, keys)
    k = lambda n: os.path.join(keys, n)
    client = client_for(tmp_path, nginx, repo)
    assert client.refresh() == 0
    old_ts_id = repo.signed("root.json")["roles"]["timestamp"]["keyids"][0]
    old_ts = json.loads(repo.read("timestamp.json"))

    out, _, _ = run([binary("otter-repo"), "key", "gen", k("timestamp-2")], check=True)
    new_ts_id = out.strip().splitlines()[-1]
    _, err, _ = repo("rotate", "timestamp", "--add-key", k("timestamp-2.pub"), "--remove-key",
                     old_ts_id[:12])
    assert "no key under [online]" in err
    # While the new root waits for its signatures, cron keeps re-signing under the root that
    # is out, with the key that is configured.
    out, _, _ = repo("refresh", "--force")
    assert "published timestamp version 2" in out
    assert client.refresh() == 0 and client.version("root") == 1
    repo.set_online_key("timestamp", k("timestamp-2.pem"))
    repo("publish", "--key", k("root-1.pem"))
    assert repo.signed("root.json")["roles"]["timestamp"]["keyids"] == [new_ts_id]
    assert client.refresh() == 0
    assert client.version("root") == 2
    with open(os.path.join(client.md, "timestamp.json")) as f:
        assert json.load(f)["signatures"][0]["keyid"] == new_ts_id

    # Whoever still holds the revoked key can sign a newer timestamp; devices refuse it.
    from cryptography.hazmat.primitives import serialization
    with open(k("timestamp-1.pem"), "rb") as f:
        old_key = serialization.load_pem_private_key(f.read(), None)
    forged = dict(old_ts)
    forged["signed"] = dict(old_ts["signed"], version=100,
                            meta=repo.signed("timestamp.json")["meta"])
    forged["signatures"] = [{"keyid": old_ts_id,
                             "sig": old_key.sign(canonical(forged["signed"])).hex()}]
    good = repo.read("timestamp.json")
    write(os.path.join(repo.metadata, "timestamp.json"), json.dumps(forged).encode())
    assert client.refresh() != 0
    write(os.path.join(repo.metadata, "timestamp.json"), good)
    # refresh (cron) signs with the new key.
    repo("refresh", "--force")
    assert client.refresh() == 0
    assert client.version("timestamp") == repo.published_version("timestamp")


def test_delegation_to_team_role(tmp_path, nginx, keys):
    repo = make_repo(nginx, keys)
    k = lambda n: os.path.join(keys, n)
    team = tmp_path / "team-keys"
    for i in (1, 2):
        run([binary("otter-repo"), "key", "gen", "--type", "ecdsa-p256", team / f"t{i}"],
            check=True)
    repo("delegate", "team", "--paths", "team/*", "team/*/*", "--key", team / "t1.pub",
         team / "t2.pub", "--threshold", "2", "--terminating")
    f = write(tmp_path / "app.bin", b"team app")
    repo("add-target", f, "--path", "team/app.bin", "--role", "team")
    # Outside the delegated paths: refused, nothing changes.
    before = repo.state()
    _, err, _ = repo("add-target", f, "--path", "other/app.bin", "--role", "team", check=False)
    assert "outside what 'targets' delegates to 'team'" in err
    assert repo.state() == before
    st = repo.status()
    assert st["staged"]["team"]["signatures"][0]["threshold"] == 2
    assert "keys targets delegates team to" in st["staged"]["team"]["signatures"][0]["keys"]
    # The team signs its role, the targets key holder the delegation.
    run([binary("otter-repo"), "sign", os.path.join(repo.staging, "team.json"), "--key",
         team / "t1.pem", team / "t2.pem"], check=True)
    run([binary("otter-repo"), "sign", os.path.join(repo.staging, "targets.json"), "--key",
         k("targets-1.pem")], check=True)
    repo("publish")
    d = repo.signed("2.targets.json")["delegations"]
    assert d["roles"][0]["name"] == "team" and d["roles"][0]["terminating"] is True
    assert repo.signed("2.snapshot.json")["meta"]["team.json"]["version"] == 1

    client = client_for(tmp_path, nginx, repo)
    assert client.download("team/app.bin") == 0
    assert client.target("team/app.bin") == b"team app"
    assert client.version("team") == 1
    # The team publishes a new version alone: targets is untouched.
    write(f, b"team app v2")
    repo("add-target", f, "--path", "team/app.bin", "--role", "team")
    repo("publish", "--key", team / "t1.pem", team / "t2.pem")
    assert repo.published_version("targets") == 2
    assert repo.published_version("team") == 2
    assert client.download("team/app.bin") == 0
    assert client.target("team/app.bin") == b"team app v2"
    out, _, _ = repo("verify", "--root", os.path.join(repo.metadata, "1.root.json"))
    assert "1 target accepted" in out

    # Replace one team key: only targets changes, team is re-signed by the new set.
    run([binary("otter-repo"), "key", "gen", team / "t3"], check=True)
    repo("rotate", "team", "--add-key", team / "t3.pub", "--remove-key", team / "t2.pub")
    assert os.path.exists(os.path.join(repo.staging, "team.json"))
    repo("publish", "--key", k("targets-1.pem"), team / "t1.pem", team / "t3.pem")
    assert client.download("team/app.bin") == 0
    assert client.version("team") == 3

    # Revoking the delegation: devices stop finding the team's targets.
    repo("undelegate", "team")
    _, err, _ = repo("publish", "--key", k("targets-1.pem"))
    assert "team.json" in repo.signed(f"{repo.published_version('snapshot')}.snapshot.json")[
        "meta"]
    assert client.download("team/app.bin") != 0
    out, _, _ = repo("verify", "--root", os.path.join(repo.metadata, "1.root.json"))
    assert "team is published but no delegation leads to it" in out
    # Delegated again to other keys: team's next version is staged for them to sign.
    repo("delegate", "team", "--paths", "team/*", "--key", team / "t3.pub")
    s = json.loads(open(os.path.join(repo.staging, "team.json")).read())
    assert s["signed"]["version"] == 4 and "team/app.bin" in s["signed"]["targets"]
    before = repo.state()
    _, err, _ = repo("publish", "--key", k("targets-1.pem"), check=False)
    assert "staged team: 0 valid signatures" in err
    assert repo.state() == before
    repo("publish", "--key", k("targets-1.pem"), team / "t3.pem")
    assert client.download("team/app.bin") == 0


def test_succinct_hash_bins(tmp_path, nginx, keys):
    repo = make_repo(nginx, keys)
    k = lambda n: os.path.join(keys, n)
    run([binary("otter-repo"), "key", "gen", k("bins")], check=True)
    repo("delegate", "bins", "--succinct", "3", "--key", k("bins.pub"))
    assert len([n for n in os.listdir(repo.staging) if n.startswith("bins-")]) == 8
    repo("publish", "--key", k("targets-1.pem"), k("bins.pem"))
    meta = repo.signed(f"{repo.published_version('snapshot')}.snapshot.json")["meta"]
    assert sorted(meta) == ["bins-%d.json" % i for i in range(8)] + ["targets.json"]
    # The bin key online: publishing new targets needs no offline key.
    repo.set_online_key("bins", k("bins.pem"))
    names = [f"pkg/p{i}.tar" for i in range(12)]
    files = [write(tmp_path / "pkgs" / f"p{i}.tar", f"package {i}".encode()) for i in range(12)]
    repo("add-target", *files, "--path", *names)
    repo("publish")
    for name in names:
        b = Repository.bin_for(name, 3)
        assert name in repo.signed(repo.role_file(b))["targets"], (name, b)
    client = client_for(tmp_path, nginx, repo)
    assert client.download(*names) == 0
    assert client.target("pkg/p7.tar") == b"package 7"
    # Undelegating the bins, with a bin change staged: that staged bin is dropped too.
    f = write(tmp_path / "late.tar", b"late")
    repo("add-target", f, "--path", "pkg/late.tar")
    _, err, _ = repo("undelegate", "bins")
    assert "nothing delegates to it any more" in err
    assert sorted(os.listdir(repo.staging)) == ["targets", "targets.json"]
    repo("publish", "--key", k("targets-1.pem"))
    assert client.download("pkg/p7.tar") != 0


@needs_faketime
def test_refresh_before_expiry(tmp_path, nginx, keys):
    repo = make_repo(nginx, keys)
    client = client_for(tmp_path, nginx, repo)
    before = repo.state()
    out, _, rc = repo("refresh")
    assert rc == 0 and "nothing to do" in out
    assert repo.state() == before
    # 25 hours later a device refuses the 1-day timestamp...
    assert client.refresh(faketime="+25h") != 0
    # ...so cron re-signs it inside the 6 h margin (here 20 h after publishing).
    out, _, rc = repo("refresh", faketime="+20h")
    assert rc == 0 and "published timestamp version 2" in out
    assert repo.published_version("snapshot") == 1
    assert client.refresh(faketime="+25h") == 0
    assert client.version("timestamp") == 2
    # Within the snapshot margin (2 d before its 7 d expiry) both are re-signed.
    out, _, rc = repo("refresh", faketime="+6d")
    assert "published snapshot version 2" in out and "published timestamp version 3" in out
    assert client.refresh(faketime="+6d") == 0
    # status warns about what expires within its margin.
    st = repo.status(faketime="+6d")
    assert st["roles"]["timestamp"]["warning"] is False
    st = repo.status(faketime="+7d")
    assert st["roles"]["timestamp"]["warning"] is True
    assert any("timestamp" in w for w in st["warnings"])
    # refresh cannot fix offline roles; it says so.
    _, err, rc = repo("refresh", "--margin", "1h", faketime="+80d")
    assert "targets expires" in err


def test_status_and_stage(tmp_path, nginx, keys):
    repo = make_repo(nginx, keys, "--keys", "root=3", "--threshold", "root=2")
    st = repo.status()
    assert st["consistent_snapshot"] is True
    assert st["roles"]["root"]["threshold"] == 2 and len(st["roles"]["root"]["keyids"]) == 3
    assert st["staged"] == {} and st["warnings"] == []
    out, _, _ = repo("status")
    assert "nothing" in out and "timestamp" in out
    # Re-sign targets unchanged with a longer expiry.
    repo("stage", "targets", "--expires", "180d")
    s = json.loads(open(os.path.join(repo.staging, "targets.json")).read())
    assert s["signatures"] == [] and s["signed"]["version"] == 2
    repo("stage", "root")
    st = repo.status()
    assert [x["keys"] for x in st["staged"]["root"]["signatures"]] == [
        "keys of the published root (old)", "keys of the new root"]
    out, _, _ = repo("status")
    assert "NOT ready" in out and "missing:" in out
    repo("stage", "root", "--discard")
    assert not os.path.exists(os.path.join(repo.staging, "root.json"))
    _, err, rc = repo("stage", "snapshot", check=False)
    assert rc != 0 and "never staged" in err
    # A signed staged file whose content then changes loses its signatures.
    run([binary("otter-repo"), "sign", os.path.join(repo.staging, "targets.json"), "--key",
         os.path.join(str(keys), "targets-1.pem")], check=True)
    _, err, _ = repo("stage", "targets", "--expires", "100d")
    assert "1 signature on staged targets dropped" in err


def test_verify_reports_rejections(tmp_path, nginx, keys):
    repo = make_repo(nginx, keys)
    f = write(tmp_path / "x.bin", b"x" * 100)
    repo("add-target", f)
    repo("publish", "--key", os.path.join(keys, "targets-1.pem"))
    root1 = os.path.join(repo.metadata, "1.root.json")
    out, _, rc = repo("verify", "--root", root1)
    assert rc == 0 and "targets    version 2" in out
    # A target file changed on the server: rejected, named.
    sha = hashlib.sha256(b"x" * 100).hexdigest()
    write(os.path.join(repo.path, "targets", f"{sha}.x.bin"), b"y" * 100)
    _, err, rc = repo("verify", "--root", root1, check=False)
    assert rc == 1 and "REJECTED target 'x.bin'" in err
    # Metadata changed on the server: the whole repository is rejected.
    data = repo.read("2.targets.json").replace(b'"version": 2', b'"version": 3')
    write(os.path.join(repo.metadata, "2.targets.json"), data)
    _, err, rc = repo("verify", "--root", root1, check=False)
    assert rc == 1 and "would reject the repository" in err


def test_help_for_every_command():
    exe = binary("otter-repo")
    out, _, rc = run([exe, "--help"])
    assert rc == 0
    cmds = ["init", "key", "add-target", "remove-target", "delegate", "undelegate", "stage",
            "sign", "import", "publish", "rotate", "refresh", "status", "verify"]
    for c in cmds:
        assert f"  {c} " in out
        out2, _, rc = run([exe, "help", c])
        assert rc == 0 and out2.startswith("Usage: otter-repo") and "--passphrase-fd" in out2
        out3, _, rc = run([exe, c, "--help"])
        assert rc == 0 and out3 == out2
    assert run([exe, "help", "nope"])[2] == 1
    assert run([exe, "nope"])[2] == 1
    assert run([exe])[2] == 1


def test_init_with_existing_keys_signed_offline(tmp_path, nginx):
    """The production path: offline keys made on their holders' machines, only public keys
    and the online private keys on the publishing machine."""
    exe = binary("otter-repo")
    env = {"PASS": "root secret"}
    for who in ("alice", "bob", "carol"):
        run([exe, "key", "gen", "--type", "ecdsa-p256", "--passphrase-env", "PASS",
             tmp_path / who / "root"], check=True, env=env)
    run([exe, "key", "gen", tmp_path / "dana" / "targets"], check=True)
    online = tmp_path / "online"
    for role in ("timestamp", "snapshot"):
        run([exe, "key", "gen", online / role], check=True)
    repo = OtterRepo(os.path.join(nginx.root, "repo"))
    out, _, _ = repo("init", "--key", f"root={tmp_path}/alice/root.pub",
                     f"root={tmp_path}/bob/root.pub", f"root={tmp_path}/carol/root.pub",
                     "--threshold", "root=2", "--key", f"targets={tmp_path}/dana/targets.pub",
                     "--online-key", f"timestamp={online}/timestamp.pem",
                     f"snapshot={online}/snapshot.pem", "--expires", "timestamp=12h")
    assert "staged root version 1 and targets version 1" in out
    assert sorted(os.listdir(repo.metadata)) == []
    conf = open(os.path.join(repo.path, "otter-repo.conf")).read()
    assert f"timestamp = {online}/timestamp.pem" in conf and "timestamp = 12h" in conf
    before = repo.state()
    _, err, _ = repo("publish", check=False)
    assert "signatures by its own root keys: 0 valid signatures, the threshold is 2" in err
    assert repo.state() == before
    for who in ("alice", "carol"):
        copy = tmp_path / who / "root.json"
        shutil.copy(os.path.join(repo.staging, "root.json"), copy)
        run([exe, "sign", copy, "--key", tmp_path / who / "root.pem", "--passphrase-env",
             "PASS"], check=True, env=env)
        repo("import", copy)
    run([exe, "sign", os.path.join(repo.staging, "targets.json"), "--key",
         tmp_path / "dana" / "targets.pem"], check=True)
    repo("publish")
    root = repo.signed("1.root.json")
    assert root["roles"]["root"]["threshold"] == 2 and len(root["roles"]["root"]["keyids"]) == 3
    assert repo.signed("timestamp.json")["expires"] < repo.signed("1.snapshot.json")["expires"]
    client = client_for(tmp_path, nginx, repo)
    assert client.refresh() == 0
    assert client.version("timestamp") == 1


def test_plain_layout_hash_prefix_delegation_and_small_commands(tmp_path, nginx, keys):
    """--no-consistent-snapshot, a delegation by hash prefixes, key id, key gen with a
    passphrase from a file descriptor, publish --dry-run."""
    repo = make_repo(nginx, keys, "--no-consistent-snapshot")
    assert repo.signed("1.root.json")["consistent_snapshot"] is False
    assert sorted(os.listdir(repo.metadata)) == ["1.root.json", "root.json", "snapshot.json",
                                                  "targets.json", "timestamp.json"]
    exe = binary("otter-repo")
    r, w = os.pipe()
    os.write(w, b"fd secret\n")
    os.close(w)
    p = subprocess.run([exe, "key", "gen", "--passphrase-fd", str(r), tmp_path / "hp"],
                       pass_fds=(r,), capture_output=True, text=True)
    os.close(r)
    assert p.returncode == 0, p.stderr
    assert b"ENCRYPTED PRIVATE KEY" in open(tmp_path / "hp.pem", "rb").read()
    out, _, _ = run([exe, "key", "id", tmp_path / "hp.pub"], check=True)
    key_id = p.stdout.strip().splitlines()[-1]
    assert out.split() == [key_id, "ed25519", str(tmp_path / "hp.pub")]

    # Everything whose sha256(path) starts with one of these goes to "half".
    name = "data/x.bin"
    prefix = hashlib.sha256(name.encode()).hexdigest()[:2]
    other = next(f"data/y{i}.bin" for i in range(100)
                 if not hashlib.sha256(f"data/y{i}.bin".encode()).hexdigest().startswith(prefix))
    repo("delegate", "half", "--hash-prefixes", prefix, "--key", tmp_path / "hp.pub")
    f = write(tmp_path / "x.bin", b"plain layout")
    repo("add-target", f, "--path", name, "--role", "half")
    _, err, _ = repo("add-target", f, "--path", other, "--role", "half", check=False)
    assert "outside what 'targets' delegates to 'half'" in err
    env = {"HP": "fd secret"}
    before = repo.state()
    out, _, _ = repo("publish", "--dry-run", "--key", os.path.join(keys, "targets-1.pem"),
                     tmp_path / "hp.pem", "--passphrase-env", "HP", env=env)
    assert "nothing was written" in out
    assert repo.state() == before
    repo("publish", "--key", os.path.join(keys, "targets-1.pem"), tmp_path / "hp.pem",
         "--passphrase-env", "HP", env=env)
    # Unversioned names; the target under its own path.
    assert os.path.exists(os.path.join(repo.metadata, "half.json"))
    assert open(os.path.join(repo.path, "targets", "data", "x.bin"), "rb").read() == \
        b"plain layout"
    client = client_for(tmp_path, nginx, repo)
    assert client.download(name) == 0
    assert client.target(name) == b"plain layout"


def test_many_hash_bins(tmp_path, nginx, keys):
    """1024 succinct bins: every bin published and listed, lookups by hash (no quadratic
    role search)."""
    repo = make_repo(nginx, keys)
    k = lambda n: os.path.join(keys, n)
    run([binary("otter-repo"), "key", "gen", k("bins")], check=True)
    repo("delegate", "bins", "--succinct", "10", "--key", k("bins.pub"), "-q", timeout=300)
    f = write(tmp_path / "one.bin", b"one of many")
    repo("add-target", f, "--path", "deep/one.bin")
    repo("publish", "--key", k("targets-1.pem"), k("bins.pem"), "-q", timeout=300)
    meta = repo.signed(f"{repo.published_version('snapshot')}.snapshot.json")["meta"]
    assert len(meta) == 1025
    b = Repository.bin_for("deep/one.bin", 10)
    assert repo.published_version(b) == 1
    assert "deep/one.bin" in repo.signed(repo.role_file(b))["targets"]
    client = client_for(tmp_path, nginx, repo)
    assert client.download("deep/one.bin") == 0
