"""`fleet serve`'s connection handling: a client that connects and then says nothing (a board losing its
link mid-handshake) must not hold up anyone else, over TLS or plain HTTP, and is dropped after the idle
timeout."""

import socket
import ssl
import time
import urllib.request

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


def test_an_idle_connection_is_closed_after_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(fserver, "IDLE_TIMEOUT_S", 0.5)
    cert, key = _cert(tmp_path)
    with Server(_router(), certfile=str(cert), keyfile=str(key)) as srv:
        s = socket.create_connection(srv.server_address)
        s.settimeout(5)
        assert s.recv(1) == b""  # the server hung up on the silent client
        s.close()
