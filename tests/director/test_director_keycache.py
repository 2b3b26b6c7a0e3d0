# SPDX-License-Identifier: LGPL-2.1-or-later
"""The per-thread cache of parsed ECU keys (docs/director.md, "What is stored where") never
authenticates with a key the database no longer holds: on SQLite and PostgreSQL, against the
running server (2 worker threads; every request is a new connection, so each test polls
often enough for both threads to have the key cached before the change)."""

from client import Key, request, signature_header

P = "/director/v1/"
POLLS = 8


def registered(director, name):
    dev = director.device(name)
    r = dev.register(director.token())
    assert r.status == 201, r.body
    return dev


def poll_ok(dev):
    for _ in range(POLLS):
        r = dev.get("timestamp.json")
        assert r.status == 200, r.body


def test_removed_device_key_refused_although_cached(director):
    dev = registered(director, "dev-cached")
    other = registered(director, "dev-other")
    poll_ok(dev)
    director.cli("device", "remove", "dev-cached", check=True)
    for _ in range(POLLS):
        r = dev.get("timestamp.json")
        assert r.status == 401 and r.json()["error"] == "unauthorized", r.body
        r = dev.get("1.root.json")
        assert r.status == 401
    # The other device is not affected.
    poll_ok(other)


def test_changed_key_row_not_answered_from_cache(director):
    """An ECU row whose public key changed under the same key id (an operator's repair, or a
    tampered database): the old key no longer authenticates, the stored one does."""
    dev = registered(director, "dev-rekeyed")
    poll_ok(dev)
    new = Key()
    pem = new.pem.replace("'", "''")
    director.sql(f"UPDATE ecus SET public_key = '{pem}' WHERE serial = "
                 f"'{dev.primary.serial}'")
    old_keyid = dev.primary.key.keyid
    for _ in range(POLLS):
        r = dev.get("timestamp.json")
        assert r.status == 401, r.body
    # A request signed by the new key but naming the row's key id is accepted: the row is
    # what counts, not what was cached for that id.
    path = P + "metadata/timestamp.json"
    for _ in range(POLLS):
        hdr = signature_header(new, "GET", path, b"")
        hdr = hdr.replace(f'keyid="{new.keyid}"', f'keyid="{old_keyid}"')
        r = request(director.url, "GET", path, headers={"Otter-Signature": hdr})
        assert r.status == 200, r.body


def test_one_read_poll_etag(director):
    """The one-read poll answers as before: 200 with the ETag, 304 when If-None-Match
    equals it, 200 again for another one; and after the device's assignments change, the
    old ETag gets the new timestamp."""
    dev = registered(director, "dev-etag")
    r = dev.get("timestamp.json")
    assert r.status == 200
    etag = r.headers["ETag"]
    r = dev.get("timestamp.json", headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b""
    r = dev.get("timestamp.json", headers={"If-None-Match": '"999"'})
    assert r.status == 200 and r.headers["ETag"] == etag
    director.sql(f"UPDATE devices SET assign_gen = assign_gen + 1 WHERE id = "
                 f"'{dev.device_id}'")
    r = dev.get("timestamp.json", headers={"If-None-Match": etag})
    assert r.status == 200 and r.headers["ETag"] != etag
    assert r.json()["signed"]["version"] == int(etag.strip('"')) + 1
