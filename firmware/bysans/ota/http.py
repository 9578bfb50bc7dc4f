# A plain HTTP/1.1 client on `socket` for the OTA client: one request per connection (Connection: close),
# a timeout on every receive, Content-Length bodies only, https through `ssl` when the URL says so (no
# certificate check: authenticity comes from the signatures, never from the server).
# Every failure raises NetError with a reason name the check-in reports.
import gc
import socket

from .neterror import NetError  # noqa: F401 (raised here; callers catch it from here too)

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

MAX_HEADER_LINE = const(512)
MAX_HEADERS = const(32)


def _is_timeout(e):
    return (e.args and e.args[0] in (11, 110, 116)) or "timed out" in str(e)


def split_url(url):
    """'http://host:port/prefix' -> (scheme, host, port, prefix without a trailing slash)."""
    scheme, _, rest = url.partition("://")
    if scheme not in ("http", "https") or not rest:
        raise NetError("UNREACHABLE", "bad server URL")
    hostport, _, prefix = rest.partition("/")
    host, _, port = hostport.partition(":")
    port = int(port) if port else (443 if scheme == "https" else 80)
    return scheme, host, port, ("/" + prefix).rstrip("/")


class Response:
    """status, length (Content-Length), headers (lower-case names: only date, content-type), and the
    socket positioned at the body: read it with read_all() or as a stream (`sock`)."""

    def __init__(self, sock, status, length, headers):
        self.sock = sock
        self.status = status
        self.length = length
        self.headers = headers

    def read_all(self, limit):
        """The whole body as a bytearray (at most `limit` bytes: more is TOO_LONG; fewer than announced is TRUNCATED)."""
        if self.length is None:
            raise NetError("GARBAGE", "no Content-Length")
        if self.length > limit:
            raise NetError("TOO_LONG", "%d bytes, at most %d" % (self.length, limit))
        gc.collect()  # one contiguous block: free what earlier steps left behind first
        buf = bytearray(self.length)
        mv = memoryview(buf)
        got = 0
        while got < self.length:
            try:
                n = self.sock.readinto(mv[got:])
            except OSError as e:
                raise NetError("TIMEOUT" if _is_timeout(e) else "TRUNCATED", "after %d bytes" % got)
            if not n:
                raise NetError("TRUNCATED", "%d of %d bytes" % (got, self.length))
            got += n
        return buf

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def request(url, method, path, body=None, timeout_s=10, content_type="application/json"):
    """Sends one request to `url` + `path`; returns a Response (close it). Raises NetError."""
    scheme, host, port, prefix = split_url(url)
    try:
        addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0][-1]
    except (OSError, IndexError) as e:
        raise NetError("UNREACHABLE", "cannot resolve %s (%s)" % (host, e))
    s = socket.socket()
    try:
        s.settimeout(timeout_s)
        try:
            s.connect(addr)
        except OSError as e:
            raise NetError("TIMEOUT" if _is_timeout(e) else "UNREACHABLE", "%s:%d (%s)" % (host, port, e))
        if scheme == "https":
            try:
                import ssl
            except ImportError:
                import tls as ssl
            s = ssl.wrap_socket(s, server_hostname=host)
        head = "%s %s%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nUser-Agent: bysans-ota\r\n" % (
            method, prefix, path, host)
        if body is not None:
            head += "Content-Type: %s\r\nContent-Length: %d\r\n" % (content_type, len(body))
        s.write(head.encode() + b"\r\n")
        if body:
            s.write(body)
        return _response(s)
    except NetError:
        s.close()
        raise
    except OSError as e:
        s.close()
        raise NetError("TIMEOUT" if _is_timeout(e) else "UNREACHABLE", str(e))


def _readline(s):
    line = s.readline()
    if not line:
        raise NetError("TRUNCATED", "the connection closed in the headers")
    if len(line) > MAX_HEADER_LINE or not line.endswith(b"\n"):
        raise NetError("GARBAGE", "a header line is too long or cut")
    return line


def _response(s):
    try:
        line = _readline(s)
    except OSError as e:
        raise NetError("TIMEOUT" if _is_timeout(e) else "UNREACHABLE", "no answer (%s)" % e)
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise NetError("GARBAGE", "not an HTTP answer")
    status = int(parts[1])
    length = None
    headers = {}
    for _ in range(MAX_HEADERS):
        line = _readline(s)
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip()
        if name == b"content-length":
            if not value.isdigit():
                raise NetError("GARBAGE", "bad Content-Length")
            length = int(value)
        elif name == b"transfer-encoding" and value.lower() != b"identity":
            raise NetError("GARBAGE", "chunked answers are not supported")
        elif name in (b"date", b"content-type"):
            headers[name.decode()] = value.decode()
    else:
        raise NetError("GARBAGE", "too many headers")
    return Response(s, status, length, headers)
