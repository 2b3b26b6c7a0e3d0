# SPDX-License-Identifier: LGPL-2.1-or-later
"""A device client of otter-director written from docs/director-protocol.md (standard library
and python3-cryptography only): ECU keys, TUF key ids, signed requests, registration,
metadata fetches and signed version manifests."""

import base64
import hashlib
import json
import time
import urllib.error
import urllib.request

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519


def canonical(v):
    """OLPC canonical JSON as TUF uses it: sorted members, no whitespace, strings escaping
    only '"' and '\\'."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ",".join(canonical(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(canonical(k) + ":" + canonical(v[k]) for k in sorted(v)) + "}"
    raise TypeError(f"cannot encode {type(v)} canonically")


class Key:
    """An ECU key: ed25519 or ecdsa-p256."""

    def __init__(self, kind="ed25519"):
        self.kind = kind
        if kind == "ed25519":
            self.priv = ed25519.Ed25519PrivateKey.generate()
        else:
            self.priv = ec.generate_private_key(ec.SECP256R1())
        self.pub = self.priv.public_key()

    @property
    def pem(self):
        return self.pub.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    @property
    def key_type(self):
        return "ed25519" if self.kind == "ed25519" else "ecdsa"

    @property
    def keyid(self):
        """The TUF key id: sha256 of the canonical key object."""
        if self.kind == "ed25519":
            raw = self.pub.public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
            obj = {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": raw.hex()}}
        else:
            obj = {"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256",
                   "keyval": {"public": self.pem}}
        return hashlib.sha256(canonical(obj).encode()).hexdigest()

    def sign(self, data):
        if self.kind == "ed25519":
            return self.priv.sign(data)
        return self.priv.sign(data, ec.ECDSA(hashes.SHA256()))

    def write_public(self, path):
        with open(path, "w") as f:
            f.write(self.pem)
        return path


def signature_header(key, method, path, body, t=None):
    t = int(time.time()) if t is None else t
    msg = f"otter-director-v1\n{method}\n{path}\n{t}\n{hashlib.sha256(body).hexdigest()}"
    sig = base64.b64encode(key.sign(msg.encode())).decode()
    return f'keyid="{key.keyid}", time={t}, sig="{sig}"'


class Response:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    def json(self):
        return json.loads(self.body)


def request(base, method, path, body=b"", key=None, headers=None, t=None,
            content_type="application/json"):
    """One HTTP request; signed with key when given. Returns a Response (4xx/5xx included)."""
    h = dict(headers or {})
    if body and content_type:
        h["Content-Type"] = content_type
    if key is not None:
        h["Otter-Signature"] = signature_header(key, method, path, body, t)
    req = urllib.request.Request(base + path, data=body if method in ("POST", "PUT") else None,
                                 method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return Response(r.status, r.read(), dict(r.headers))
    except urllib.error.HTTPError as e:
        return Response(e.code, e.read(), dict(e.headers))


class Ecu:
    def __init__(self, serial, hardware_id, primary=False, kind="ed25519"):
        self.serial = serial
        self.hardware_id = hardware_id
        self.primary = primary
        self.key = Key(kind)
        self.counter = 0
        self.installed = {"filepath": "factory.img",
                          "fileinfo": {"length": 0,
                                       "hashes": {"sha256": hashlib.sha256(b"").hexdigest()}}}


def envelope(signed, key):
    sig = key.sign(canonical(signed).encode()).hex()
    return {"signatures": [{"keyid": key.keyid, "sig": sig}], "signed": signed}


class Device:
    """A device: a primary ECU and optional secondaries."""

    PREFIX = "/director/v1/"

    def __init__(self, base, device_id, secondaries=0, kind="ed25519"):
        self.base = base
        self.device_id = device_id
        self.ecus = [Ecu(f"{device_id}-p", "hw-main", True, kind)]
        for i in range(secondaries):
            self.ecus.append(Ecu(f"{device_id}-s{i}", "hw-aux", False, kind))

    @property
    def primary(self):
        return self.ecus[0]

    def registration(self, token=None, device_id=True):
        body = {"ecus": [{"serial": e.serial, "hardware_id": e.hardware_id,
                          "key_type": e.key.key_type, "public_key": e.key.pem,
                          "primary": e.primary} for e in self.ecus]}
        if device_id:
            body["device_id"] = self.device_id
        if token:
            body["token"] = token
        return body

    def register(self, token=None, device_id=True):
        body = json.dumps(self.registration(token, device_id)).encode()
        return request(self.base, "POST", self.PREFIX + "register", body, self.primary.key)

    def get(self, name, key=None, headers=None):
        return request(self.base, "GET", self.PREFIX + "metadata/" + name, b"",
                       key or self.primary.key, headers=headers)

    def get_json(self, name):
        r = self.get(name)
        assert r.status == 200, (name, r.status, r.body)
        return r.json()

    def fetch_repository(self, folder):
        """Copies the device's metadata (root chain, timestamp, snapshot, targets) into
        folder, as a static repository for a TUF client. Returns the targets document."""
        import os
        os.makedirs(folder, exist_ok=True)
        n = 1
        while True:
            r = self.get(f"{n}.root.json")
            if r.status == 404:
                break
            assert r.status == 200, r.body
            with open(os.path.join(folder, f"{n}.root.json"), "wb") as f:
                f.write(r.body)
            n += 1
        ts = self.get("timestamp.json")
        assert ts.status == 200, ts.body
        with open(os.path.join(folder, "timestamp.json"), "wb") as f:
            f.write(ts.body)
        sv = ts.json()["signed"]["meta"]["snapshot.json"]["version"]
        snap = self.get(f"{sv}.snapshot.json")
        assert snap.status == 200, snap.body
        with open(os.path.join(folder, f"{sv}.snapshot.json"), "wb") as f:
            f.write(snap.body)
        tv = snap.json()["signed"]["meta"]["targets.json"]["version"]
        tg = self.get(f"{tv}.targets.json")
        assert tg.status == 200, tg.body
        with open(os.path.join(folder, f"{tv}.targets.json"), "wb") as f:
            f.write(tg.body)
        return tg.json()

    def ecu_report(self, ecu, counter=None):
        if counter is None:
            ecu.counter += 1
            counter = ecu.counter
        signed = {"ecu_serial": ecu.serial, "installed_image": ecu.installed,
                  "attacks_detected": "", "report_counter": counter}
        return envelope(signed, ecu.key)

    def manifest(self, report=None, device_id=None, ecus=None, counters=None, sign_key=None,
                 extra_reports=None):
        ecus = self.ecus if ecus is None else ecus
        reports = {e.serial: self.ecu_report(e, (counters or {}).get(e.serial)) for e in ecus}
        reports.update(extra_reports or {})
        signed = {"device_id": device_id or self.device_id,
                  "primary_ecu_serial": self.primary.serial,
                  "ecu_version_manifests": reports}
        if report:
            signed["installation_report"] = report
        return envelope(signed, sign_key or self.primary.key)

    def put_manifest(self, doc, key=None):
        body = json.dumps(doc).encode()
        return request(self.base, "PUT", self.PREFIX + "manifest", body, key or self.primary.key)
