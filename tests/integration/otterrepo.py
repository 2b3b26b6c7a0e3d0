"""Helpers for the otter-repo suites: the CLI on a repository folder served by nginx, an
otter-tuf client pointed at it, and a fingerprint of a whole folder tree (to show that a
failed command left the repository exactly as it was)."""

import hashlib
import json
import os
import re
import stat
from urllib.parse import quote

from conftest import binary, run


def tree_state(path):
    """Every file and folder under path with its type, mode and content hash."""
    state = {}
    for root, dirs, files in os.walk(path):
        for d in dirs:
            p = os.path.join(root, d)
            state[os.path.relpath(p, path) + "/"] = oct(os.lstat(p).st_mode)
        for f in files:
            p = os.path.join(root, f)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            else:
                digest = os.readlink(p) if stat.S_ISLNK(st.st_mode) else ""
            state[os.path.relpath(p, path)] = (oct(st.st_mode), digest)
    return state


class OtterRepo:
    """otter-repo on one repository folder."""

    def __init__(self, path):
        self.path = str(path)
        self.exe = binary("otter-repo")

    def __call__(self, *args, check=True, env=None, input=None, faketime=None, timeout=120):
        cmd = [self.exe, *[str(a) for a in args], "--repo", self.path]
        if faketime:
            cmd = ["faketime", "-f", faketime] + cmd
        return run(cmd, check=check, env=env, input=input, timeout=timeout)

    @property
    def metadata(self):
        return os.path.join(self.path, "metadata")

    @property
    def staging(self):
        return os.path.join(self.path, "staging")

    def read(self, name):
        with open(os.path.join(self.metadata, name), "rb") as f:
            return f.read()

    def signed(self, name):
        return json.loads(self.read(name))["signed"]

    def published_version(self, role):
        """Version of a role as published (following timestamp -> snapshot)."""
        ts = self.signed("timestamp.json")
        if role == "timestamp":
            return ts["version"]
        snap_v = ts["meta"]["snapshot.json"]["version"]
        if role == "snapshot":
            return snap_v
        if role == "root":
            return self.signed("root.json")["version"]
        return self.signed(f"{snap_v}.snapshot.json")["meta"][f"{role}.json"]["version"]

    def role_file(self, role):
        return f"{self.published_version(role)}.{quote(role, safe='')}.json"

    def state(self):
        return tree_state(self.path)

    def status(self, **kw):
        out, _, _ = self("status", "--json", **kw)
        return json.loads(out)

    def set_online_key(self, role, path):
        """Points [online] ROLE at path in otter-repo.conf (replacing earlier entries)."""
        conf = os.path.join(self.path, "otter-repo.conf")
        with open(conf) as f:
            text = f.read()
        text = re.sub(rf"^{role} = .*\n", "", text, flags=re.M)
        text = text.replace("[online]\n", f"[online]\n{role} = {path}\n")
        with open(conf, "w") as f:
            f.write(text)


class TufClient:
    """otter-tuf with its own metadata and target folders."""

    def __init__(self, base, nginx, repo_name="repo", name="client"):
        self.exe = binary("otter-tuf")
        self.md = os.path.join(str(base), name, "metadata")
        self.td = os.path.join(str(base), name, "targets")
        os.makedirs(self.md)
        os.makedirs(self.td)
        self.metadata_url = nginx.url(f"{repo_name}/metadata/")
        self.targets_url = nginx.url(f"{repo_name}/targets/")

    def init(self, root_path):
        return run([self.exe, "--metadata-dir", self.md, "init", root_path])[2]

    def refresh(self, faketime=None):
        cmd = [self.exe, "--metadata-dir", self.md, "--metadata-url", self.metadata_url,
               "refresh"]
        if faketime:
            cmd = ["faketime", "-f", faketime] + cmd
        return run(cmd)[2]

    def download(self, *names, faketime=None):
        cmd = [self.exe, "--metadata-dir", self.md, "--metadata-url", self.metadata_url,
               "--target-base-url", self.targets_url, "--target-dir", self.td]
        for n in names:
            cmd += ["--target-name", n]
        if faketime:
            cmd = ["faketime", "-f", faketime] + cmd
        return run(cmd + ["download"])[2]

    def version(self, role):
        p = os.path.join(self.md, f"{quote(role, safe='')}.json")
        if not os.path.exists(p):
            return None
        with open(p, "rb") as f:
            return json.loads(f.read())["signed"]["version"]

    def target(self, name):
        with open(os.path.join(self.td, quote(name, safe="")), "rb") as f:
            return f.read()


def make_repo(nginx, keys_dir, *init_args):
    """A repository served at nginx's /repo/, all keys generated into keys_dir."""
    repo = OtterRepo(os.path.join(nginx.root, "repo"))
    repo("init", "--keys-dir", keys_dir, *init_args)
    return repo


def write(path, data):
    os.makedirs(os.path.dirname(str(path)) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)
