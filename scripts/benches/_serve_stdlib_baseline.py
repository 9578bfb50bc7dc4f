"""The baseline of the serve.checkins_per_s benchmark (scripts/benches/serve.py): `fleet serve`'s HTTP layer
as it was until Starlette + Hypercorn replaced it (issue 16), kept for the benchmark only: a hand-written
layer on the standard library's ThreadingHTTPServer (listen backlog 5), one thread per connection.

A small HTTP layer on the standard library: requests, responses, a router, a threaded server with TLS.

Handlers take a Request and return a Response; a FleetError raised by a handler becomes a JSON error
with its hint and a matching status. The server never prints: it logs through `logging`.
"""

import json
import logging
import re
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from fleet.errors import Conflict, FleetError, NotFound, UsageError

log = logging.getLogger("fleet.serve")
MAX_BODY = 8 * 1024 * 1024
IDLE_TIMEOUT_S = 30  # a connection that sends nothing (or stalls in the TLS handshake) is closed after this


class HTTPError(FleetError):
    def __init__(self, status: int, message: str, *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict  # lower-case names
    body: bytes
    client: str
    params: dict = field(default_factory=dict)  # from the route pattern

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError as e:
            raise HTTPError(400, f"the request body is not JSON: {e}")

    @property
    def bearer_token(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    headers: dict = field(default_factory=dict)

    @classmethod
    def json(cls, obj, status=200):
        return cls(status, json.dumps(obj, default=str).encode(), "application/json")

    @classmethod
    def text(cls, text, status=200, content_type="text/plain; charset=utf-8"):
        return cls(status, text.encode(), content_type)


_STATUS = {UsageError: 400, NotFound: 404, Conflict: 409}


def error_response(e: Exception) -> Response:
    if isinstance(e, HTTPError):
        status = e.status
    elif isinstance(e, FleetError):
        status = next((s for t, s in _STATUS.items() if isinstance(e, t)), getattr(e, "http_status", 400))
    else:
        log.exception("handler failed")
        return Response.json({"error": "internal error"}, 500)
    body = {"error": e.message}
    if e.hint:
        body["hint"] = e.hint
    return Response.json(body, status)


class Router:
    def __init__(self):
        self._routes = []

    def add(self, method: str, pattern: str, handler):
        """`pattern` is a path with {name} parts, e.g. /api/devices/{dev_eui}; {name:path} matches slashes."""
        regex = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", pattern)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        self._routes.append((method.upper(), re.compile("^" + regex + "$"), handler))

    def dispatch(self, req: Request) -> Response:
        allowed = []
        for method, regex, handler in self._routes:
            m = regex.match(req.path)
            if not m:
                continue
            if method != req.method and not (method == "GET" and req.method == "HEAD"):
                allowed.append(method)
                continue
            req.params = m.groupdict()
            try:
                return handler(req)
            except Exception as e:  # every failure becomes one answer; unexpected ones are logged
                return error_response(e)
        if allowed:
            return Response.json({"error": f"{req.method} is not allowed here", "allowed": allowed}, 405)
        return Response.json({"error": f"nothing at {req.path}"}, 404)


def _handler_class(router):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fleet"
        timeout = IDLE_TIMEOUT_S

        def _handle(self):
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(Response.json({"error": "request body too large"}, 413))
                return
            body = self.rfile.read(length) if length else b""
            req = Request(self.command, url.path, {k: v[-1] for k, v in parse_qs(url.query).items()},
                          {k.lower(): v for k, v in self.headers.items()}, body, self.client_address[0])
            self._send(router.dispatch(req))

        def _send(self, resp: Response):
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            for k, v in resp.headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                try:
                    self.wfile.write(resp.body)
                except (BrokenPipeError, ConnectionResetError):
                    # the client went away mid-answer (a board losing power while downloading): normal
                    log.info("%s left before the answer was sent", self.address_string())

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        def log_message(self, fmt, *args):
            log.info("%s %s", self.address_string(), fmt % args)

    return Handler


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # socketserver prints the traceback to stderr; a library logs it instead
        log.warning("connection from %s failed", client_address[0], exc_info=True)


class Server:
    """A threaded HTTP(S) server; `with Server(router) as s: ... s.url`."""

    def __init__(self, router: Router, *, host="127.0.0.1", port=0, certfile=None, keyfile=None):
        self.httpd = _HTTPServer((host, port), _handler_class(router))
        self.scheme = "http"
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            # The handshake happens in the connection's own thread, on its first read, under the idle
            # timeout: done in accept(), one client that connects and stays silent stalls every other.
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                                do_handshake_on_connect=False)
            self.scheme = "https"
        self._thread = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fleet-serve", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self):
        self.httpd.serve_forever()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---- the benchmark's baseline server: POST /api/checkin as fleet/serve/routes/ota.py answered it on this
# layer (authenticate, then record, each request in its own thread and transactions) -------------------

def checkin_router(store, repo_dir, poll_s=3600):
    from fleet.errors import CheckinRejected

    def checkin(req):
        try:
            report = store.authenticate(req.body, req.query.get("mac"))
        except CheckinRejected:
            raise
        return Response.json(store.checkin(report, repo_dir, poll_s=poll_s))

    router = Router()
    router.add("POST", "/api/checkin", checkin)
    router.add("GET", "/healthz", lambda req: Response.json({"ok": True}))
    return router


if __name__ == "__main__":  # python _serve_stdlib_baseline.py DB_URL REPO_DIR: prints "serving on URL"
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from fleet.rollout import OtaStore

    srv = Server(checkin_router(OtaStore.open(sys.argv[1]), Path(sys.argv[2])))
    print(f"serving on {srv.url}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
