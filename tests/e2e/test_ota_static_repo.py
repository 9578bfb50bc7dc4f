"""The signed update repository is plain static files: published with `fleet release publish`, served by
Debian's nginx (unprivileged, on a loopback port, from a throwaway config: no system service), and a
virtual board updates from it while its check-ins go to `fleet serve`, which holds no repository at all.
The board's ota/config.json names the two apart: "repo" (the static files) and "server" (check-ins).

Skipped with a note when nginx is missing (apt-get install nginx); .ci/run installs it and requires it."""

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from fleet.rollout import OtaStore
from fleet.serve.app import ServeContext, build_app
from fleet.serve.server import Server
from lab.ota import HEAP, Lab, Repl, provision

DEV = "70B3D57ED0000051"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CONF = """daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    types {{ application/json json; }}
    default_type application/octet-stream;
    access_log {d}/access.log;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nginx(tmp_path, program):
    """(url, access log path, repository dir) of an nginx serving tmp_path/repo as static files."""
    program(NGINX, "nginx")
    d, root = tmp_path / "nginx", tmp_path / "repo"
    d.mkdir()
    root.mkdir()
    port = _free_port()
    (d / "nginx.conf").write_text(CONF.format(d=d, port=port, root=root))
    proc = subprocess.Popen([NGINX, "-p", str(d), "-e", str(d / "error.log"), "-c", str(d / "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode(errors="replace") if proc.poll() is not None else ""
                    pytest.fail(f"nginx did not start: {err} {(d / 'error.log').read_text()[-500:]}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", d / "access.log", root
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_board_updates_from_nginx_while_it_checks_in_to_fleet_serve(make_board, nginx, tmp_path):
    url, access_log, root = nginx
    lab = Lab(tmp_path / "lab")
    lab.repo = root  # `fleet release publish` writes where nginx serves
    r1 = lab.build("1.0.0")
    r2 = lab.derive(r1, "2.0.0")
    lab.publish(r1)
    # check-ins only: this server has no repository (its /repo/ answers 404)
    srv = Server(build_app(ServeContext(repo_dir=None, db_url=lab.db_url, options={"sealer": lab.sealer})))
    srv.start()
    store = OtaStore.open(lab.db_url)
    try:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(srv.url + "/repo/repository.json", timeout=5)
        assert e.value.code == 404

        b = make_board(heap=HEAP, scenario=lab.wifi_scenario)  # its check-ins and downloads go over WiFi
        provision(b, r1, lab.root1, lab.config(DEV, server=srv.url, repo=url))
        r = Repl(b)
        r.run("import machine")
        r.c.write(b"\x02")
        b.reset()
        r.reconnect()
        assert r.poll()["state"] == "confirmed"  # it runs what the channel holds
        assert store.device(DEV)["version"] == "1.0.0"

        lab.publish(r2)
        assert r.poll() is None  # installed from nginx into slot b, switched, reset
        after = r.state()
        assert (after["version"], after["slot"], after["trial"]) == ("2.0.0", "b", None)
        assert r.files_ok()
        assert r.poll()["state"] == "confirmed"
        d = store.device(DEV)
        assert (d["version"], d["slot"], d["state"]) == ("2.0.0", "b", "confirmed")

        log = access_log.read_text()
        assert "GET /channels/0751/virtual.json" in log and "GET /objects/" in log
    finally:
        store.close()
        srv.stop()
