"""Runs the ASGI app (fleet/serve/app.py) on Hypercorn: a real listen backlog, keep-alive, TLS, idle
connections and stalled TLS handshakes closed, and a graceful shutdown (answers in flight are finished).

    with Server(app, port=0) as srv:        # in a thread of its own (tests, the lab)
        urllib.request.urlopen(srv.url + "/healthz")
    Server(app, port=8080).serve_forever()  # in the foreground until SIGINT/SIGTERM (fleet serve)

Why Hypercorn (docs/serve.md): it closes a connection that never sends a request and bounds the TLS
handshake, both by configuration, so a board that loses its link mid-handshake holds nothing. The socket is
bound here (port 0 picks a free one), then handed to Hypercorn by its file descriptor.
"""

import asyncio
import logging
import signal
import socket
import threading

from hypercorn.asyncio import serve
from hypercorn.config import Config

log = logging.getLogger("fleet.serve")

IDLE_TIMEOUT_S = 30  # a connection that sends nothing (or stalls in the TLS handshake) is closed after this
BACKLOG = 2048  # connections the kernel queues before they are accepted (the standard library's was 5)
SHUTDOWN_GRACE_S = 10  # answers in flight get this long at shutdown


class Server:
    """An HTTP(S) server for one ASGI app; `with Server(app) as s: ... s.url`. The app's lifespan shutdown
    runs after the last answer went out (fleet/serve/app.py closes the check-in writer there)."""

    def __init__(self, app, *, host="127.0.0.1", port=0, certfile=None, keyfile=None):
        self.app = app
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((host, port))
        self.sock.listen(BACKLOG)
        self.scheme = "https" if certfile else "http"
        self._certfile, self._keyfile = certfile, keyfile
        self._loop = None
        self._stop_event = None
        self._thread = None
        self._started = threading.Event()

    @property
    def server_address(self) -> tuple:
        return self.sock.getsockname()[:2]

    @property
    def url(self) -> str:
        host, port = self.server_address
        return f"{self.scheme}://{host}:{port}"

    def _config(self) -> Config:
        cfg = Config()
        cfg.bind = [f"fd://{self.sock.dup().detach()}"]  # Hypercorn closes its own copy
        if self._certfile:
            cfg.certfile, cfg.keyfile = self._certfile, self._keyfile
        cfg.backlog = BACKLOG
        cfg.keep_alive_timeout = IDLE_TIMEOUT_S
        cfg.ssl_handshake_timeout = IDLE_TIMEOUT_S
        cfg.graceful_timeout = SHUTDOWN_GRACE_S
        cfg.errorlog = log  # a library logs; it never prints
        cfg.accesslog = None
        cfg.include_server_header = False
        return cfg

    async def _serve(self, stop: asyncio.Event):
        self._loop, self._stop_event = asyncio.get_running_loop(), stop
        self._started.set()
        await serve(self.app, self._config(), shutdown_trigger=stop.wait, mode="asgi")

    def start(self):
        """Serves in a thread of its own; returns once the server accepts connections."""
        async def main():
            await self._serve(asyncio.Event())

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), name="fleet-serve", daemon=True)
        self._thread.start()
        self._started.wait(10)
        return self

    def serve_forever(self):
        """Serves until SIGINT or SIGTERM, then finishes the answers in flight and returns."""

        async def main():
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            await self._serve(stop)

        asyncio.run(main())

    def stop(self):
        """Stops accepting, finishes the answers in flight (at most SHUTDOWN_GRACE_S), closes the socket."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
            self._thread.join(SHUTDOWN_GRACE_S + 5)
        self.sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
