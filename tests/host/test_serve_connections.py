"""`fleet serve`'s connection handling: a client that connects and then says nothing (a board losing its
link mid-handshake) must not hold up anyone else, over TLS or plain HTTP, and is dropped after the idle
timeout."""

import asyncio
import json
import http.client
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from starlette.applications import Starlette
from starlette.routing import Route

from fleet.serve import server as fserver
from fleet.serve.server import Server
from fleet.serve.web import json_response

from tlscert import self_signed as _cert


def _router():
    async def ping(request):
        return json_response({"ok": True})

    return Starlette(routes=[Route("/ping", ping)])


@pytest.mark.parametrize("tls", [True, False], ids=["https", "http"])
def test_a_silent_client_does_not_hold_up_others(tmp_path, tls):
    kw = {}
    ctx = None
    if tls:
        cert, key = _cert(tmp_path)
        kw = {"certfile": str(cert), "keyfile": str(key)}
        ctx = ssl.create_default_context(cafile=str(cert))
    with Server(_router(), **kw) as srv:
        host, port = srv.server_address
        silent = [socket.create_connection((host, port)) for _ in range(3)]  # connect, then nothing
        try:
            time.sleep(0.2)
            with urllib.request.urlopen(srv.url + "/ping", context=ctx, timeout=5) as r:
                assert r.read() == b'{"ok": true}'
        finally:
            for s in silent:
                s.close()


@pytest.mark.parametrize("tls", [True, False], ids=["https", "http"])
def test_an_idle_connection_is_closed_after_the_timeout(tmp_path, monkeypatch, tls):
    monkeypatch.setattr(fserver, "IDLE_TIMEOUT_S", 0.5)
    kw = {}
    if tls:
        cert, key = _cert(tmp_path)
        kw = {"certfile": str(cert), "keyfile": str(key)}
    with Server(_router(), **kw) as srv:
        s = socket.create_connection(srv.server_address)
        s.settimeout(5)
        assert s.recv(1) == b""  # the server hung up on the silent client
        s.close()


def test_a_kept_alive_connection_serves_several_requests():
    with Server(_router()) as srv:
        conn = http.client.HTTPConnection(*srv.server_address, timeout=5)
        socks = set()
        for _ in range(3):
            conn.request("GET", "/ping")
            r = conn.getresponse()
            assert (r.status, r.read()) == (200, b'{"ok": true}')
            socks.add(id(conn.sock))
        assert len(socks) == 1  # one connection for all three
        conn.close()


def test_500_clients_connecting_at_once_are_all_answered():
    """The standard library's server (listen backlog 5) reset connections from 20 clients at once."""
    with Server(_router()) as srv:
        def get(_):
            with urllib.request.urlopen(srv.url + "/ping", timeout=30) as r:
                return r.status

        with ThreadPoolExecutor(500) as pool:
            assert list(pool.map(get, range(500))) == [200] * 500


def test_a_stop_finishes_the_answers_in_flight():
    started = threading.Event()

    async def slow(request):
        started.set()
        await asyncio.sleep(1.0)
        return json_response({"done": True})

    srv = Server(Starlette(routes=[Route("/slow", slow)])).start()
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(lambda: urllib.request.urlopen(srv.url + "/slow", timeout=10).read())
        assert started.wait(5)
        srv.stop()  # while /slow is still working
        assert answer.result() == b'{"done": true}'
    with pytest.raises(OSError):
        urllib.request.urlopen(srv.url + "/ping", timeout=2)  # and nothing is accepted after


def test_unknown_paths_wrong_methods_and_huge_bodies_are_answered_in_json(tmp_path):
    from fleet.serve.app import ServeContext, build_app

    def call(srv, method, path, body=None):
        req = urllib.request.Request(srv.url + path, body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    with Server(build_app(ServeContext(db_url=f"sqlite:///{tmp_path / 'reg.sqlite'}"))) as srv:
        assert call(srv, "GET", "/healthz")[1]["ok"] is True
        assert call(srv, "GET", "/nothing/here") == (404, {"error": "nothing at /nothing/here"})
        st, body = call(srv, "POST", "/healthz", b"{}")
        assert st == 405 and "GET" in body["allowed"]
        with socket.create_connection(srv.server_address, timeout=10) as c:  # says 9 MiB are coming
            c.sendall(b"POST /api/checkin HTTP/1.1\r\nHost: x\r\nContent-Length: 9437184\r\n\r\n")
            answer = c.makefile("rb").read()
        assert answer.startswith(b"HTTP/1.1 413") and b'"request body too large"' in answer
        st, body = call(srv, "GET", "/repo/channels/0751/virtual.json")
        assert st == 404 and "hint" in body  # a FleetError's hint travels in the answer
