"""Repository authoring cut short: otter-repo killed at each of its atomic renames
(OTTER_TEST_CRASHPOINT), with otter-tuf as the device, served by nginx on 127.0.0.1. Whatever
is cut, devices see the old repository or the new one, never a mix, and running the command
again completes it."""

import os

import pytest

from conftest import binary, run
from otterrepo import TufClient, make_repo, write


@pytest.fixture
def keys(tmp_path):
    return str(tmp_path / "keys")


def client_for(tmp_path, nginx, repo, name="client"):
    c = TufClient(tmp_path, nginx, name=name)
    assert c.init(os.path.join(repo.metadata, "1.root.json")) == 0
    return c


# publish renames about ten files (the client check's temporary metadata, then the
# repository's); the last value must let it complete.
@pytest.mark.parametrize("cut", range(1, 15))
def test_publish_cut_short_is_never_inconsistent(tmp_path, nginx, keys, cut):
    """A publish killed at its Nth atomic rename: devices see the old or the new repository,
    and running publish again completes it."""
    repo = make_repo(nginx, keys)
    k = lambda n: os.path.join(keys, n)
    run([binary("otter-repo"), "key", "gen", k("root-2")], check=True)
    f = write(tmp_path / "new.bin", b"new release")
    repo("add-target", f)
    repo("rotate", "root", "--add-key", k("root-2.pub"))
    client = client_for(tmp_path, nginx, repo)
    assert client.refresh() == 0
    _, _, rc = repo("publish", "--key", k("root-1.pem"), k("root-2.pem"), k("targets-1.pem"),
                    check=None, env={"OTTER_TEST_CRASHPOINT": f"rename:{cut}"})
    # Whatever was cut, a device refreshes successfully: old or new, never a mix.
    assert client.refresh() == 0
    if rc == 0:
        return  # fewer renames than cut: publish completed
    assert cut < 14, "raise the range: publish was cut at its last rename"
    assert rc == 99
    # The next publish completes the job; the device then gets the new release.
    repo("publish", "--key", k("root-1.pem"), k("root-2.pem"), k("targets-1.pem"))
    assert repo.published_version("targets") == 2
    assert repo.signed("root.json")["version"] == 2
    assert client.download("new.bin") == 0
    assert client.version("root") == 2
