"""Servers the suites and the demo start on 127.0.0.1: nginx with its own configuration on a
free port (never the distribution's service)."""

import os
import shutil
import socket
import subprocess
import time


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NGINX_CONF = """
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
    types {{ application/json json; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ autoindex off; }}
    }}
}}
"""


class Nginx:
    """nginx on 127.0.0.1 serving `root`. url(path) gives the URL of a file under root."""

    def __init__(self, base):
        self.state = os.path.join(base, "nginx-state")
        self.root = os.path.join(base, "www")
        os.makedirs(self.state)
        os.makedirs(self.root)
        self.port = free_port()
        conf = os.path.join(self.state, "nginx.conf")
        with open(conf, "w") as f:
            # As root, workers would run as "nobody" and could not read pytest's 0700 tmp.
            user = "user root root;" if os.getuid() == 0 else ""
            f.write(NGINX_CONF.format(user=user, state=self.state, port=self.port,
                                      root=self.root))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([nginx, "-c", conf, "-p", self.state, "-e",
                                      os.path.join(self.state, "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("nginx failed: " + self.proc.stderr.read().decode())
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}/{path}"

    def requests(self):
        """Paths requested so far (from the access log), with their status codes."""
        log = os.path.join(self.state, "access.log")
        out = []
        if not os.path.exists(log):
            return out
        with open(log) as f:
            for line in f:
                parts = line.split('"')
                if len(parts) < 3:
                    continue
                req = parts[1].split()
                status = parts[2].split()[0]
                if len(req) >= 2:
                    out.append((req[1], int(status)))
        return out

    def clear_log(self):
        # nginx keeps the file open: truncate in place.
        log = os.path.join(self.state, "access.log")
        if os.path.exists(log):
            open(log, "w").close()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
