"""A TUF repository built in code, for driving otter-tuf in tests.

Independent of otter: keys and signatures come from python3-cryptography and canonical JSON
from python3-securesystemslib (Debian packages), so every test that otter passes is also a
cross-check of otter's canonical JSON, key ids and signature verification.

The repository is plain dicts: tests change any field, sign with any key (or none) and
publish whichever files they want, which is how attacks are staged.
"""

import copy
import datetime
import hashlib
import json
import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from securesystemslib.formats import encode_canonical

SPEC_VERSION = "1.0.31"
TOP_LEVEL = ("root", "timestamp", "snapshot", "targets")


def canonical(obj):
    return encode_canonical(obj).encode("utf-8")


def expiry(days):
    t = datetime.datetime.utcnow().replace(microsecond=0) + datetime.timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def keyid_of(keydict):
    return hashlib.sha256(canonical(keydict)).hexdigest()


class Key:
    """A signing key of one of the three TUF key types."""

    def __init__(self, kind="ed25519"):
        self.kind = kind
        if kind == "ed25519":
            self.private = ed25519.Ed25519PrivateKey.generate()
            raw = self.private.public_key().public_bytes(serialization.Encoding.Raw,
                                                         serialization.PublicFormat.Raw)
            self.public = {"keytype": "ed25519", "scheme": "ed25519",
                           "keyval": {"public": raw.hex()}}
        elif kind == "ecdsa":
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.public = {"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256",
                           "keyval": {"public": self._pem()}}
        elif kind == "rsa":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.public = {"keytype": "rsa", "scheme": "rsassa-pss-sha256",
                           "keyval": {"public": self._pem()}}
        else:
            raise ValueError(kind)
        self.keyid = keyid_of(self.public)

    def _pem(self):
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sign(self, message):
        if self.kind == "ed25519":
            sig = self.private.sign(message)
        elif self.kind == "ecdsa":
            sig = self.private.sign(message, ec.ECDSA(hashes.SHA256()))
        else:
            sig = self.private.sign(
                message,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                hashes.SHA256())
        return sig.hex()


class Repository:
    """A repository on disk: DIR/metadata and DIR/targets, consistent snapshots by default.

    roles: dict role -> signed dict; keys: role -> [Key] used for signing (may differ from
    what the delegator lists, to stage attacks)."""

    def __init__(self, path, key_types=None, consistent=True, thresholds=None):
        self.path = path
        self.metadata_dir = os.path.join(path, "metadata")
        self.targets_dir = os.path.join(path, "targets")
        os.makedirs(self.metadata_dir, exist_ok=True)
        os.makedirs(self.targets_dir, exist_ok=True)
        key_types = key_types or {}
        thresholds = thresholds or {}
        self.signers = {}
        self.delegators = {}  # delegated role -> delegator role
        self.signed = {}
        root = {"_type": "root", "spec_version": SPEC_VERSION, "version": 1,
                "expires": expiry(365), "consistent_snapshot": consistent,
                "keys": {}, "roles": {}}
        for role in TOP_LEVEL:
            kinds = key_types.get(role, ["ed25519"])
            if isinstance(kinds, str):
                kinds = [kinds]
            keys = [Key(k) for k in kinds]
            self.signers[role] = keys
            for k in keys:
                root["keys"][k.keyid] = k.public
            root["roles"][role] = {"keyids": [k.keyid for k in keys],
                                   "threshold": thresholds.get(role, 1)}
        self.signed["root"] = root
        self.signed["targets"] = {"_type": "targets", "spec_version": SPEC_VERSION,
                                  "version": 1, "expires": expiry(90), "targets": {}}
        self.signed["snapshot"] = {"_type": "snapshot", "spec_version": SPEC_VERSION,
                                   "version": 1, "expires": expiry(7),
                                   "meta": {"targets.json": {"version": 1}}}
        self.signed["timestamp"] = {"_type": "timestamp", "spec_version": SPEC_VERSION,
                                    "version": 1, "expires": expiry(1),
                                    "meta": {"snapshot.json": {"version": 1}}}
        self.snapshot_hashes = False
        self.timestamp_hashes = False
        self.published = {}  # file name -> bytes of the last publication
        self.publish_all()

    # ---- signing and serialisation ----

    def envelope(self, role, keys=None, extra_signatures=()):
        keys = self.signers[role] if keys is None else keys
        signed = self.signed[role]
        msg = canonical(signed)
        sigs = [{"keyid": k.keyid, "sig": k.sign(msg)} for k in keys]
        sigs.extend(extra_signatures)
        return {"signatures": sigs, "signed": signed}

    def serialise(self, role, keys=None, **kw):
        return (json.dumps(self.envelope(role, keys, **kw), indent=1, sort_keys=True)
                + "\n").encode()

    @property
    def consistent(self):
        return self.signed["root"].get("consistent_snapshot", False)

    def write_metadata(self, name, data):
        path = os.path.join(self.metadata_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        self.published[name] = data

    def file_name(self, role):
        """Where a role's file lies on disk. Clients percent-encode role names in URLs
        ("a/b" -> "2.a%2Fb.json") and a static server decodes them, so the file carries
        the plain name (for "a/b": folder "2.a", file "b.json")."""
        if role == "root":
            return f"{self.signed['root']['version']}.root.json"
        if role == "timestamp" or not self.consistent:
            return f"{role}.json"
        return f"{self.signed[role]['version']}.{role}.json"

    def publish_role(self, role, data=None, keys=None):
        """Writes one role's file as it is now (data overrides the bytes)."""
        data = data if data is not None else self.serialise(role, keys)
        self.write_metadata(self.file_name(role), data)
        if role == "root":
            self.write_metadata("root.json", data)
        return data

    def meta_entry(self, data, version, with_hashes):
        entry = {"version": version}
        if with_hashes:
            entry["length"] = len(data)
            entry["hashes"] = {"sha256": hashlib.sha256(data).hexdigest()}
        return entry

    def publish(self, roles, bump=True):
        """Bumps (optionally) and publishes roles in the given order; snapshot and timestamp
        entries are refreshed to point at what was just written."""
        for role in roles:
            if bump:
                self.signed[role]["version"] += 1
            if role == "snapshot":
                pass
            data = self.publish_role(role)
            if role not in ("root", "timestamp", "snapshot"):
                self.signed["snapshot"]["meta"][f"{role}.json"] = self.meta_entry(
                    data, self.signed[role]["version"], self.snapshot_hashes)
            if role == "snapshot":
                self.signed["timestamp"]["meta"]["snapshot.json"] = self.meta_entry(
                    data, self.signed["snapshot"]["version"], self.timestamp_hashes)

    def publish_all(self):
        self.publish_role("root")
        for role in self.signed:
            if role not in TOP_LEVEL:
                data = self.publish_role(role)
                self.signed["snapshot"]["meta"][f"{role}.json"] = self.meta_entry(
                    data, self.signed[role]["version"], self.snapshot_hashes)
        data = self.publish_role("targets")
        self.signed["snapshot"]["meta"]["targets.json"] = self.meta_entry(
            data, self.signed["targets"]["version"], self.snapshot_hashes)
        data = self.publish_role("snapshot")
        self.signed["timestamp"]["meta"]["snapshot.json"] = self.meta_entry(
            data, self.signed["snapshot"]["version"], self.timestamp_hashes)
        self.publish_role("timestamp")

    def update(self, *roles):
        """The usual release: bump and publish roles, then snapshot and timestamp."""
        roles = [r for r in roles if r not in ("snapshot", "timestamp")]
        self.publish(roles + ["snapshot", "timestamp"])

    # ---- content ----

    def add_target(self, path, data, role="targets", custom=None, hash_algs=("sha256",)):
        hashes_ = {alg: hashlib.new(alg, data).hexdigest() for alg in hash_algs}
        entry = {"length": len(data), "hashes": hashes_}
        if custom is not None:
            entry["custom"] = custom
        self.signed[role]["targets"][path] = entry
        self.write_target(path, data, hashes_)
        return entry

    def write_target(self, path, data, hashes_=None):
        """Writes target bytes where a client fetches them (every hash-prefixed name)."""
        directory, _, base = path.rpartition("/")
        target_dir = os.path.join(self.targets_dir, directory)
        os.makedirs(target_dir, exist_ok=True)
        names = [f"{h}.{base}" for h in (hashes_ or {}).values()] if self.consistent else [base]
        if not hashes_ and self.consistent:
            entry = self.find_target(path)
            names = [f"{h}.{base}" for h in entry["hashes"].values()]
        for name in names:
            with open(os.path.join(target_dir, name), "wb") as f:
                f.write(data)

    def find_target(self, path):
        for role, signed in self.signed.items():
            if signed.get("_type") == "targets" and path in signed["targets"]:
                return signed["targets"][path]
        raise KeyError(path)

    def add_delegation(self, delegator, name, paths=None, prefixes=None, terminating=False,
                       key_kinds=("ed25519",), threshold=1, keys=None):
        keys = keys if keys is not None else [Key(k) for k in key_kinds]
        parent = self.signed[delegator]
        dele = parent.setdefault("delegations", {"keys": {}, "roles": []})
        for k in keys:
            dele["keys"][k.keyid] = k.public
        role = {"name": name, "keyids": [k.keyid for k in keys], "threshold": threshold,
                "terminating": terminating}
        if prefixes is not None:
            role["path_hash_prefixes"] = prefixes
        else:
            role["paths"] = paths if paths is not None else ["*"]
        dele["roles"].append(role)
        self.signers[name] = keys
        self.delegators[name] = delegator
        if name not in self.signed:
            self.signed[name] = {"_type": "targets", "spec_version": SPEC_VERSION,
                                 "version": 1, "expires": expiry(90), "targets": {}}
            data = self.publish_role(name)
            self.signed["snapshot"]["meta"][f"{name}.json"] = self.meta_entry(
                data, 1, self.snapshot_hashes)
        return keys

    def add_succinct_delegation(self, delegator, bit_length, name_prefix="bins",
                                key_kind="ed25519"):
        key = Key(key_kind)
        self.signed[delegator]["delegations"] = {
            "keys": {key.keyid: key.public},
            "succinct_roles": {"keyids": [key.keyid], "threshold": 1,
                               "bit_length": bit_length, "name_prefix": name_prefix}}
        width = len(f"{2 ** bit_length - 1:x}")
        names = [f"{name_prefix}-{i:0{width}x}" for i in range(2 ** bit_length)]
        for n in names:
            self.signers[n] = [key]
            self.delegators[n] = delegator
            self.signed[n] = {"_type": "targets", "spec_version": SPEC_VERSION, "version": 1,
                              "expires": expiry(90), "targets": {}}
            data = self.publish_role(n)
            self.signed["snapshot"]["meta"][f"{n}.json"] = self.meta_entry(
                data, 1, self.snapshot_hashes)
        return names

    @staticmethod
    def bin_for(path, bit_length, name_prefix="bins"):
        h = hashlib.sha256(path.encode()).digest()
        idx = int.from_bytes(h[:4], "big") >> (32 - bit_length)
        width = len(f"{2 ** bit_length - 1:x}")
        return f"{name_prefix}-{idx:0{width}x}"

    # ---- keys ----

    def rotate_root(self, add=(), remove=(), threshold=None, sign_with_old=None,
                    sign_with_new=None, role="root"):
        """Publishes root N+1 with `role`'s keys changed. Root is signed by the old root keys
        and the new ones (override with sign_with_old / sign_with_new lists)."""
        old_signers = list(self.signers["root"])
        root = copy.deepcopy(self.signed["root"])
        r = root["roles"][role]
        for k in remove:
            r["keyids"].remove(k.keyid)
        for k in add:
            root["keys"][k.keyid] = k.public
            r["keyids"].append(k.keyid)
        if threshold is not None:
            r["threshold"] = threshold
        used = {kid for rl in root["roles"].values() for kid in rl["keyids"]}
        root["keys"] = {kid: v for kid, v in root["keys"].items() if kid in used}
        root["version"] += 1
        self.signed["root"] = root
        if role == "root":
            new_signers = [k for k in old_signers if k not in remove] + list(add)
        else:
            new_signers = old_signers
            self.signers[role] = [k for k in self.signers[role] if k not in remove] + list(add)
        olds = old_signers if sign_with_old is None else sign_with_old
        news = new_signers if sign_with_new is None else sign_with_new
        keys = list({id(k): k for k in list(olds) + list(news)}.values())
        self.signers["root"] = new_signers
        return self.publish_role("root", keys=keys)
