"""Bad input to otter-repo gives a clear error and leaves the repository folder byte-identical
(every file, folder and mode hashed before and after): missing or wrong keys, wrong
passphrases, thresholds not met, expired metadata, bad target paths, files that vanish,
keys inside the repository, stale staging, and a concurrent command."""

import fcntl
import hashlib
import json
import os
import shutil

import pytest

from conftest import binary, run, needs_faketime
from otterrepo import OtterRepo, TufClient, make_repo, tree_state, write


@pytest.fixture
def setup(tmp_path, nginx):
    keys = str(tmp_path / "keys")
    repo = make_repo(nginx, keys)
    f = write(tmp_path / "in" / "a.bin", b"payload")
    repo("add-target", f)
    return repo, keys, tmp_path


def fails_unchanged(repo, *args, needle, env=None, faketime=None):
    """Runs a command that must fail with needle in its error, changing nothing."""
    before = repo.state()
    _, err, rc = repo(*args, check=False, env=env, faketime=faketime)
    assert rc == 1, f"expected failure, got {rc}"
    assert needle in err, f"'{needle}' not in: {err}"
    assert repo.state() == before, "the repository folder changed"
    return err


def test_missing_key_file(setup):
    repo, keys, tmp = setup
    fails_unchanged(repo, "publish", "--key", os.path.join(keys, "nope.pem"),
                    needle="does not exist")
    fails_unchanged(repo, "delegate", "team", "--paths", "t/*", "--key", tmp / "nope.pub",
                    needle="does not exist")
    fails_unchanged(repo, "rotate", "targets", "--add-key", tmp / "nope.pub",
                    needle="does not exist")


def test_wrong_key(setup):
    repo, keys, tmp = setup
    # The timestamp key may not sign targets: the threshold is not met.
    err = fails_unchanged(repo, "publish", "--key", os.path.join(keys, "timestamp-1.pem"),
                          needle="0 valid signatures, the threshold is 1")
    assert "sign staging/targets.json" in err
    # A signature by a key root does not list for targets does not count either.
    other = tmp / "other"
    run([binary("otter-repo"), "key", "gen", other], check=True)
    run([binary("otter-repo"), "sign", os.path.join(repo.staging, "targets.json"), "--key",
         f"{other}.pem"], check=True)
    fails_unchanged(repo, "publish", needle="0 valid signatures")
    # A public key where a private one is needed.
    fails_unchanged(repo, "publish", "--key", os.path.join(keys, "targets-1.pub"),
                    needle="public key")
    # A file that is no key at all.
    bogus = write(tmp / "bogus.pem", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    fails_unchanged(repo, "publish", "--key", bogus, needle="cannot read private key")


def test_wrong_passphrase(setup):
    repo, keys, tmp = setup
    enc = tmp / "enc"
    env = {"P": "correct horse"}
    run([binary("otter-repo"), "key", "gen", "--passphrase-env", "P", enc], check=True, env=env)
    assert b"ENCRYPTED PRIVATE KEY" in open(f"{enc}.pem", "rb").read()
    repo("rotate", "targets", "--add-key", f"{enc}.pub", "--remove-key",
         os.path.join(keys, "targets-1.pub"))
    fails_unchanged(repo, "publish", "--key", f"{enc}.pem", os.path.join(keys, "root-1.pem"),
                    "--passphrase-env", "P", env={"P": "wrong"}, needle="wrong passphrase")
    fails_unchanged(repo, "publish", "--key", f"{enc}.pem", os.path.join(keys, "root-1.pem"),
                    needle="is encrypted: give its passphrase with --passphrase-fd")
    fails_unchanged(repo, "publish", "--key", f"{enc}.pem", "--passphrase-env", "UNSET_VAR",
                    needle="not set")
    # Never from argv: there is no such option.
    fails_unchanged(repo, "publish", "--passphrase", "correct horse", needle="unknown option")
    # The right one from a file descriptor works.
    r, w = os.pipe()
    os.write(w, b"correct horse\n")
    os.close(w)
    cmd = [binary("otter-repo"), "publish", "--repo", repo.path, "--key", f"{enc}.pem",
           os.path.join(keys, "root-1.pem"), "--passphrase-fd", str(r)]
    import subprocess
    p = subprocess.run(cmd, pass_fds=(r,), capture_output=True, text=True)
    os.close(r)
    assert p.returncode == 0, p.stderr
    assert repo.published_version("targets") == 2


def test_threshold_not_met_root(setup):
    repo, keys, tmp = setup
    k2 = tmp / "root-2"
    run([binary("otter-repo"), "key", "gen", k2], check=True)
    repo("rotate", "root", "--add-key", f"{k2}.pub", "--threshold", "2")
    # The old root's key alone: the new root's threshold of 2 is not met.
    err = fails_unchanged(repo, "publish", "--key", os.path.join(keys, "root-1.pem"),
                          os.path.join(keys, "targets-1.pem"),
                          needle="signatures by its own root keys")
    assert "1 valid signature, the threshold is 2" in err
    # The new key alone: the old root's threshold is not met.
    fails_unchanged(repo, "publish", "--key", f"{k2}.pem", os.path.join(keys, "targets-1.pem"),
                    needle="signatures by the keys of root version 1")
    # A threshold no key set could meet is refused at once.
    fails_unchanged(repo, "rotate", "snapshot", "--threshold", "3", needle="could never be met")
    fails_unchanged(repo, "rotate", "timestamp", "--remove-key",
                    repo.signed("root.json")["roles"]["timestamp"]["keyids"][0],
                    needle="no key left")


@needs_faketime
def test_expired_metadata(setup):
    repo, keys, tmp = setup
    tk = os.path.join(keys, "targets-1.pem")
    # Staged targets that expire in an hour, published "two hours later".
    repo("stage", "targets", "--expires", "1h")
    fails_unchanged(repo, "publish", "--key", tk, faketime="+2h", needle="expired at")
    # A published role that expired: a device would reject the result, so nothing is written.
    repo("stage", "targets", "--expires", "90d")
    repo("publish", "--key", tk)
    repo("stage", "root")
    fails_unchanged(repo, "publish", "--key", os.path.join(keys, "root-1.pem"),
                    faketime="+91d", needle="a device would reject the result")


@pytest.mark.parametrize("path", ["../escape.bin", "/abs.bin", "a//b.bin", "a/./b.bin",
                                  "dir/", "", "sp ace.bin", "q?.bin", "a/../b"])
def test_bad_target_path(setup, path):
    repo, keys, tmp = setup
    fails_unchanged(repo, "add-target", tmp / "in" / "a.bin", "--path", path,
                    needle="refused")


def test_file_vanished(setup):
    repo, keys, tmp = setup
    good = write(tmp / "in" / "good.bin", b"good")
    fails_unchanged(repo, "add-target", good, tmp / "in" / "missing.bin",
                    needle="missing.bin")
    fails_unchanged(repo, "add-target", tmp / "in", needle="not a regular file")
    # A staged target file that disappeared before publish.
    blobs = os.path.join(repo.staging, "targets")
    for b in os.listdir(blobs):
        os.unlink(os.path.join(blobs, b))
    fails_unchanged(repo, "publish", "--key", os.path.join(keys, "targets-1.pem"),
                    needle="add it again")
    # A signed copy of content that is not staged (any more).
    copy = tmp / "old-copy.json"
    shutil.copy(os.path.join(repo.staging, "targets.json"), copy)
    repo("stage", "targets", "--expires", "30d")
    fails_unchanged(repo, "import", copy, needle="matches no staged role")


def test_keys_inside_the_repository(setup):
    repo, keys, tmp = setup
    inside = os.path.join(repo.path, "keys")
    before = repo.state()
    _, err, rc = run([binary("otter-repo"), "key", "gen", os.path.join(inside, "k")])
    assert rc == 1 and "inside the repository folder" in err
    _, err, rc = run([binary("otter-repo"), "key", "gen", os.path.join(repo.metadata, "k")])
    assert rc == 1 and "inside the repository folder" in err
    assert repo.state() == before
    # A key someone copied there anyway is refused for signing and publishing.
    os.makedirs(inside)
    shutil.copy(os.path.join(keys, "targets-1.pem"), inside)
    before = repo.state()
    _, err, rc = run([binary("otter-repo"), "sign", os.path.join(repo.staging, "targets.json"),
                      "--key", os.path.join(inside, "targets-1.pem")])
    assert rc == 1 and "inside the repository folder" in err
    fails_unchanged(repo, "publish", "--key", os.path.join(inside, "targets-1.pem"),
                    needle="inside the repository folder")
    # An online key configured inside the repository folder.
    repo.set_online_key("timestamp", os.path.join(inside, "targets-1.pem"))
    fails_unchanged(repo, "publish", "--key", os.path.join(keys, "targets-1.pem"),
                    needle="inside the repository folder")
    _, err, rc = run([binary("otter-repo"), "init", "--repo", str(tmp / "r2"), "--keys-dir",
                      str(tmp / "r2" / "keys")])
    assert rc == 1 and "inside the repository folder" in err


def test_signing_published_metadata_is_refused(setup):
    repo, keys, tmp = setup
    before = repo.state()
    _, err, rc = run([binary("otter-repo"), "sign", os.path.join(repo.metadata,
                                                                "1.targets.json"),
                      "--key", os.path.join(keys, "targets-1.pem")])
    assert rc == 1 and "is published metadata" in err
    _, err, rc = run([binary("otter-repo"), "sign", os.path.join(repo.staging, "targets.json"),
                      os.path.join(repo.metadata, "timestamp.json"), "--key",
                      os.path.join(keys, "targets-1.pem")])
    assert rc == 1
    assert repo.state() == before  # all files signed, or none


def test_bad_config_and_options(setup):
    repo, keys, tmp = setup
    conf = os.path.join(repo.path, "otter-repo.conf")
    good = open(conf).read()
    open(conf, "w").write(good.replace("targets = 90d", "targets = soon", 1))
    err = fails_unchanged(repo, "publish", needle="otter-repo.conf:")
    assert "is not a duration" in err
    open(conf, "w").write(good.replace("[online]", "[onlin]"))
    fails_unchanged(repo, "status", needle="unknown section 'onlin'")
    open(conf, "w").write(good)
    fails_unchanged(repo, "publish", "--bogus", needle="unknown option '--bogus'")
    fails_unchanged(repo, "init", needle="holds a repository already")
    fails_unchanged(repo, "delegate", "targets", "--paths", "x/*", "--key",
                    os.path.join(keys, "root-1.pub"), needle="not a usable role name")
    fails_unchanged(repo, "delegate", "t", "--paths", "/x/*", "--key",
                    os.path.join(keys, "root-1.pub"), needle="pattern")
    fails_unchanged(repo, "add-target", tmp / "in" / "a.bin", "--custom", "[1, 2]",
                    needle="--custom must be a JSON object")
    fails_unchanged(repo, "add-target", tmp / "in" / "a.bin", "--custom", '{"a": 1.5}',
                    needle="floating")
    fails_unchanged(repo, "add-target", tmp / "in" / "a.bin", "--role", "nobody",
                    needle="not a targets role")
    fails_unchanged(repo, "remove-target", "not-there.bin", needle="lists target")
    fails_unchanged(repo, "undelegate", "nobody", needle="not delegated")
    _, err, rc = run([binary("otter-repo"), "status", "--repo", str(tmp)])
    assert rc == 1 and "not an otter-repo repository" in err


def test_stale_staging_is_refused(setup):
    repo, keys, tmp = setup
    tk = os.path.join(keys, "targets-1.pem")
    staged = open(os.path.join(repo.staging, "targets.json"), "rb").read()
    repo("publish", "--key", tk)
    # The same version staged again after it was published (e.g. restored from a backup).
    write(os.path.join(repo.staging, "targets.json"), staged)
    f = write(tmp / "in" / "b.bin", b"b")
    # Content differs from what was published at that version: refused as a rollback.
    repo("add-target", f)
    s = json.loads(open(os.path.join(repo.staging, "targets.json")).read())
    assert s["signed"]["version"] == 2
    fails_unchanged(repo, "publish", "--key", tk, needle="versions only go up")
    repo("stage", "targets", "--discard")
    assert not os.path.exists(os.path.join(repo.staging, "targets.json"))


def test_concurrent_commands_are_refused(setup):
    repo, keys, tmp = setup
    with open(os.path.join(repo.path, ".otter-repo.lock")) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fails_unchanged(repo, "publish", "--key", os.path.join(keys, "targets-1.pem"),
                        needle="another otter-repo command")
    repo("publish", "--key", os.path.join(keys, "targets-1.pem"))


def test_staged_file_changed_after_add_target(setup):
    """Issue 8, finding 1: a staged target file changed after add-target is refused at
    publish (nothing written), and adding the right file again replaces both the staged copy
    and a damaged published copy."""
    repo, keys, tmp = setup
    tk = os.path.join(keys, "targets-1.pem")
    good = b"payload"
    sha256 = hashlib.sha256(good).hexdigest()
    blob = os.path.join(repo.staging, "targets", sha256)
    write(blob, b"PAYLOAD")
    err = fails_unchanged(repo, "publish", "--key", tk, needle="target 'a.bin'")
    assert f"staging/targets/{sha256}" in err
    assert f"expected length 7, sha256 {sha256}" in err
    assert f"found length 7, sha256 {hashlib.sha256(b'PAYLOAD').hexdigest()}" in err
    assert "add the right file again" in err
    # Adding the right file again replaces the changed staged copy.
    repo("add-target", tmp / "in" / "a.bin")
    assert open(blob, "rb").read() == good
    repo("publish", "--key", tk)
    published = [os.path.join(repo.path, "targets", f"{sha256}.a.bin"),
                 os.path.join(repo.path, "targets",
                              f"{hashlib.sha512(good).hexdigest()}.a.bin")]
    for p in published:
        assert open(p, "rb").read() == good
    # A damaged published copy (as an earlier otter-repo could publish) is replaced by the
    # staged file when the target is added again: the staged copy wins.
    os.unlink(published[0])
    write(published[0], b"damaged")
    repo("add-target", tmp / "in" / "a.bin")
    repo("publish", "--key", tk)
    for p in published:
        assert open(p, "rb").read() == good


def test_import_verifies_signatures(setup):
    """Issue 8, finding 2: import checks each signature against its key and the staged
    content; a bogus one is rejected and reported, and a valid one replaces a bogus one by
    the same key that is already in staging."""
    repo, keys, tmp = setup
    staged = os.path.join(repo.staging, "targets.json")
    keyid = run([binary("otter-repo"), "key", "id", os.path.join(keys, "targets-1.pub")],
                check=True)[0].strip().split()[0]
    env = json.loads(open(staged).read())
    bogus = dict(env, signatures=[{"keyid": keyid, "sig": "ab" * 64}])
    bogus_file = write(tmp / "bogus.json", json.dumps(bogus).encode())
    # A bogus signature for the targets key: rejected, nothing imported.
    err = fails_unchanged(repo, "import", bogus_file,
                          needle=f"signature by key {keyid} rejected: it does not verify")
    assert "1 signature was rejected" in err
    # A signature by a key targets does not use: rejected as well.
    other = tmp / "other"
    run([binary("otter-repo"), "key", "gen", other], check=True)
    foreign = write(tmp / "foreign.json", open(staged, "rb").read())
    run([binary("otter-repo"), "sign", foreign, "--key", f"{other}.pem"], check=True)
    fails_unchanged(repo, "import", foreign, needle="not one of the keys that sign")
    # A bogus signature that reached staging (copied over the staged file) is replaced by
    # the real one on import, and the threshold is met.
    write(staged, json.dumps(bogus).encode())
    real = write(tmp / "real.json", json.dumps(env).encode())
    run([binary("otter-repo"), "sign", real, "--key", os.path.join(keys, "targets-1.pem")],
        check=True)
    out, _, _ = repo("import", real, check=True)
    assert "1 invalid signature in staging replaced" in out
    assert "1 new signature for staged targets" in out
    sigs = json.loads(open(staged).read())["signatures"]
    assert [s["keyid"] for s in sigs] == [keyid] and sigs[0]["sig"] != "ab" * 64
    # Importing the same valid signature again adds nothing; publish needs no key.
    out, _, _ = repo("import", real, check=True)
    assert "0 new signatures" in out
    repo("publish")
    assert repo.published_version("targets") == 2
    # A new root takes signatures by the keys of the published root (leaving) and its own.
    run([binary("otter-repo"), "key", "gen", tmp / "root-new"], check=True)
    repo("rotate", "root", "--add-key", tmp / "root-new.pub", "--remove-key",
         os.path.join(keys, "root-1.pub"))
    copy = write(tmp / "root-copy.json",
                 open(os.path.join(repo.staging, "root.json"), "rb").read())
    run([binary("otter-repo"), "sign", copy, "--key", os.path.join(keys, "root-1.pem"),
         tmp / "root-new.pem"], check=True)
    out, _, _ = repo("import", copy, check=True)
    assert "2 new signatures for staged root" in out
    repo("publish")
    assert repo.published_version("root") == 2


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_private_key_readable_by_others_is_refused(setup, mode):
    """Issue 8, finding 8: like ssh, a private key that group or others may access is
    refused, with the mode and a chmod hint; at 0600 it is used."""
    repo, keys, tmp = setup
    tk = os.path.join(keys, "targets-1.pem")
    os.chmod(tk, mode)
    err = fails_unchanged(repo, "publish", "--key", tk,
                          needle=f"private key '{tk}' is accessible by group or others")
    assert f"(mode {mode:04o})" in err and f"chmod 600 {tk}" in err
    staged = os.path.join(repo.staging, "targets.json")
    before = open(staged, "rb").read()
    _, err, _ = run([binary("otter-repo"), "sign", staged, "--key", tk], check=False)
    assert "chmod 600" in err and open(staged, "rb").read() == before
    # An online key named in otter-repo.conf is held to the same rule.
    os.chmod(tk, 0o600)
    ts = os.path.join(keys, "timestamp-1.pem")
    os.chmod(ts, mode)
    fails_unchanged(repo, "publish", "--key", tk, needle=f"chmod 600 {ts}")
    os.chmod(ts, 0o600)
    repo("publish", "--key", tk)
    assert repo.published_version("targets") == 2
