# SPDX-License-Identifier: LGPL-2.1-or-later
"""Several otter-director processes on one database (stateless servers, state in the
database), on SQLite and PostgreSQL: the same manifest sent to both at once is accepted
once; concurrent polls through both see one metadata history. And proxy mode: the device
named by a TLS proxy on loopback."""

import json
import threading

from client import Device, request
from conftest import Director
from test_director_device import assign, count, registered

P = "/director/v1/"


def second_server(director, ceremony, pg):
    """Another otter-director on the same database and configuration."""
    other = Director.__new__(Director)
    other.__dict__.update(director.__dict__)
    other.tmp = director.tmp / "second"
    other.tmp.mkdir()
    other.proc = None
    return other.start()


def test_two_servers_accept_a_manifest_once(director, ceremony):
    other = second_server(director, ceremony, director.pg)
    try:
        d = registered(director, "dev-race", secondaries=1)
        for rnd in range(5):
            m = d.manifest()
            body = json.dumps(m).encode()
            results = []

            def send(url):
                results.append(request(url, "PUT", P + "manifest", body, d.primary.key).status)
            threads = [threading.Thread(target=send, args=(u,))
                       for u in (director.url, other.url, director.url, other.url)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(results) == [204, 409, 409, 409], (rnd, results)
        assert count(director, "manifests") == 5
    finally:
        other.stop()


def test_two_servers_share_versions(director, ceremony):
    other = second_server(director, ceremony, director.pg)
    try:
        d = registered(director, "dev-share")
        seen = []
        for i in range(3):
            director.sql("DELETE FROM assignments")
            assign(director, d, d.primary, corr=f"c{i}", path=f"fw/app-{i}.bin")
            # Both servers poll at once after the change: one regeneration, one version.
            out = []

            def poll(url):
                dev = Device(url, d.device_id)
                dev.ecus = d.ecus
                out.append(dev.get_json("timestamp.json")["signed"]["version"])
            threads = [threading.Thread(target=poll, args=(u,))
                       for u in (director.url, other.url) * 3]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(set(out)) == 1, out
            seen.append(out[0])
        assert seen == sorted(seen) and len(set(seen)) == 3
    finally:
        other.stop()


def test_proxy_mode_takes_the_device_from_the_proxy_header(director):
    d = registered(director, "dev-mtls")
    director.stop()
    director.conf.write_text(director.conf.read_text().replace("[server]\n",
                                                               "[server]\nauth = proxy\n"))
    director.start()
    d.base = director.url
    hdr = {"Otter-Device-Id": "dev-mtls"}
    r = request(director.url, "GET", P + "metadata/timestamp.json", headers=hdr)
    assert r.status == 200
    r = request(director.url, "PUT", P + "manifest", json.dumps(d.manifest()).encode(),
                headers=hdr)
    assert r.status == 204
    # No header, or a device that does not exist: nothing.
    assert request(director.url, "GET", P + "metadata/timestamp.json").status == 401
    r = request(director.url, "GET", P + "metadata/timestamp.json",
                headers={"Otter-Device-Id": "dev-nobody"})
    assert r.status == 401
    # In signature mode (the default) the header means nothing.
    director.stop()
    conf = director.conf.read_text().replace("auth = proxy\n", "auth = signature\n")
    director.conf.write_text(conf)
    director.start()
    r = request(director.url, "GET", P + "metadata/timestamp.json", headers=hdr)
    assert r.status == 401


def test_admin_api_on_its_own_listener_or_off(director):
    from servers import free_port
    from conftest import ADMIN_TOKEN
    auth = {"Authorization": "Bearer " + ADMIN_TOKEN}
    port = free_port()
    director.stop()
    base = director.conf.read_text()
    director.conf.write_text(base.replace("[server]\n",
                                          f"[server]\nadmin-listen = 127.0.0.1:{port}\n"))
    director.start()
    admin = f"http://127.0.0.1:{port}"
    assert request(director.url, "POST", P + "admin/fleet", b"{}", headers=auth).status == 404
    r = request(admin, "POST", P + "admin/fleet", b"{}", headers=auth)
    assert r.status == 200, r.body
    assert request(admin, "POST", P + "admin/fleet", b"{}").status == 401
    # The device API is not on the admin listener.
    assert request(admin, "GET", P + "metadata/timestamp.json").status == 404
    director.stop()
    director.conf.write_text(base.replace("[server]\n", "[server]\nadmin-listen = off\n"))
    director.start()
    assert request(director.url, "POST", P + "admin/fleet", b"{}", headers=auth).status == 404
