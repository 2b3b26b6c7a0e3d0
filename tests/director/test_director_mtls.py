# SPDX-License-Identifier: LGPL-2.1-or-later
"""Proxy mode behind nginx with mutual TLS, as docs/director.md describes it: nginx verifies
the device's client certificate (CN = device id, issued by the fleet CA) and names the
device in Otter-Device-Id; otter-director (auth = proxy) trusts that header from loopback
only. A device without a certificate, with one from another CA, or sending the header itself
gets nothing else than its own data."""

import datetime
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from servers import free_port
from test_director_device import registered

P = "/director/v1/"

NGINX = """
{user}
daemon off;
worker_processes 1;
pid {state}/nginx.pid;
error_log {state}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {state}/access.log;
    client_body_temp_path {state}/body;
    proxy_temp_path {state}/proxy;
    fastcgi_temp_path {state}/fastcgi;
    uwsgi_temp_path {state}/uwsgi;
    scgi_temp_path {state}/scgi;
    map $ssl_client_s_dn $otter_device {{
        ~(^|,)CN=(?<cn>[^,]+) $cn;
        default "";
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {d}/server.crt;
        ssl_certificate_key {d}/server.key;
        ssl_client_certificate {d}/fleet-ca.crt;
        ssl_verify_client on;
        client_max_body_size 256k;
        location /director/v1/admin/ {{ deny all; }}
        location /director/v1/ {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_set_header Otter-Device-Id $otter_device;
        }}
    }}
}}
"""


def make_cert(name, issuer=None, issuer_key=None, ca=False, san=None):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject)
         .issuer_name(issuer.subject if issuer else subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    cert = b.sign(issuer_key or key, hashes.SHA256())
    return cert, key


def write_pem(path, cert, key=None):
    with open(path + ".crt", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        with open(path + ".key", "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))


@pytest.fixture
def mtls(director, tmp_path):
    import ipaddress
    d = str(tmp_path / "pki")
    os.makedirs(d)
    ca, ca_key = make_cert("fleet CA", ca=True)
    write_pem(os.path.join(d, "fleet-ca"), ca, ca_key)
    srv, srv_key = make_cert("127.0.0.1", ca, ca_key,
                             san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    write_pem(os.path.join(d, "server"), srv, srv_key)
    for name in ("dev-mtls", "dev-other"):
        c, k = make_cert(name, ca, ca_key)
        write_pem(os.path.join(d, name), c, k)
    rogue_ca, rogue_key = make_cert("rogue CA", ca=True)
    c, k = make_cert("dev-mtls", rogue_ca, rogue_key)
    write_pem(os.path.join(d, "rogue"), c, k)

    director.stop()
    director.conf.write_text(director.conf.read_text().replace("[server]\n",
                                                               "[server]\nauth = proxy\n"))
    director.start()
    state = str(tmp_path / "nginx")
    os.makedirs(state)
    port = free_port()
    conf = os.path.join(state, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX.format(user="user root root;" if os.getuid() == 0 else "", state=state,
                             port=port, d=d, upstream=director.port))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx, "-c", conf, "-p", state, "-e",
                             os.path.join(state, "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 10
    import socket
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, "nginx did not start"
            time.sleep(0.05)
    yield {"url": f"https://127.0.0.1:{port}", "pki": d}
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)


def call(m, method, path, cert=None, body=b"", headers=None):
    ctx = ssl.create_default_context(cafile=os.path.join(m["pki"], "fleet-ca.crt"))
    if cert:
        ctx.load_cert_chain(os.path.join(m["pki"], cert + ".crt"),
                            os.path.join(m["pki"], cert + ".key"))
    h = dict(headers or {})
    if body:
        h["Content-Type"] = "application/json"
    req = urllib.request.Request(m["url"] + path, data=body or None, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (ssl.SSLError, urllib.error.URLError, ConnectionError) as e:
        return "tls", str(e).encode()


def test_mutual_tls_identifies_the_device(director, mtls):
    d = registered(director, "dev-mtls")
    registered(director, "dev-other")
    status, body = call(mtls, "GET", P + "metadata/timestamp.json", "dev-mtls")
    assert status == 200, body
    sv = json.loads(body)["signed"]["meta"]["snapshot.json"]["version"]
    status, body = call(mtls, "GET", P + f"metadata/{sv}.snapshot.json", "dev-mtls")
    tv = json.loads(body)["signed"]["meta"]["targets.json"]["version"]
    status, body = call(mtls, "GET", P + f"metadata/{tv}.targets.json", "dev-mtls")
    assert status == 200
    assert json.loads(body)["signed"]["custom"]["device_id"] == "dev-mtls"
    # Its manifest (still signed by its ECU keys) is accepted.
    status, body = call(mtls, "PUT", P + "manifest", "dev-mtls",
                        json.dumps(d.manifest()).encode())
    assert status == 204, body


def test_mutual_tls_refuses_devices_without_a_fleet_certificate(director, mtls):
    registered(director, "dev-mtls")
    status, _ = call(mtls, "GET", P + "metadata/timestamp.json")
    assert status in (400, "tls")
    status, _ = call(mtls, "GET", P + "metadata/timestamp.json", "rogue")
    assert status in (400, "tls")


def test_mutual_tls_device_cannot_name_another(director, mtls):
    registered(director, "dev-mtls")
    registered(director, "dev-other")
    status, body = call(mtls, "GET", P + "metadata/timestamp.json", "dev-other",
                        headers={"Otter-Device-Id": "dev-mtls"})
    assert status == 200
    sv = json.loads(body)["signed"]["meta"]["snapshot.json"]["version"]
    status, body = call(mtls, "GET", P + f"metadata/{sv}.snapshot.json", "dev-other",
                        headers={"Otter-Device-Id": "dev-mtls"})
    tv = json.loads(body)["signed"]["meta"]["targets.json"]["version"]
    status, body = call(mtls, "GET", P + f"metadata/{tv}.targets.json", "dev-other",
                        headers={"Otter-Device-Id": "dev-mtls"})
    assert json.loads(body)["signed"]["custom"]["device_id"] == "dev-other"
    # The admin API is not reachable through the proxy at all.
    status, _ = call(mtls, "POST", P + "admin/fleet", "dev-other", b"{}")
    assert status == 403
