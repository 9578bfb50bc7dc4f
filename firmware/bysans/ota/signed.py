# Signed metadata files (docs/formats/update-repository.md): two lines, the canonical JSON body (the signed
# bytes, verbatim) and the signatures; Ed25519 over SHA-256(body) (checked in root.py). The device hashes the
# bytes it received as it parses them, in one pass through one small buffer (jsonpull.Body gives the
# tokens): it never re-serialises JSON, never holds a copy of the whole file, and the elements of one
# top-level array may go to a sink instead of a list (a manifest's "files": manifest.Files packs them, so a
# manifest of many files never becomes a list of dicts).
import json

from .reasons import FORMAT, _need
from .jsonpull import MAX_DEPTH, Body, _bad

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

MAX_SIGS = const(4096)  # the signature line, when read from a stream


def _value(r, depth):
    c = r._peek()
    if c == 34:
        return r._str()
    if c == 123 or c == 91:
        return _nested(r, c, None, depth + 1)
    if c == 45 or 48 <= c <= 57:
        return r._int()
    if c == 116:
        r.word(b"true")
        return True
    if c == 102:
        r.word(b"false")
        return False
    if c != 110:
        _bad()
    r.word(b"null")
    return None


def _nested(r, c, hooks, depth):
    """An object (c is '{') or an array ('['). For an object, `hooks` maps a key to a sink (start(),
    add(element)) that takes the elements of its array instead of a list (the key then maps to the sink);
    for an array, `hooks` is the function that takes each element."""
    _need(depth <= MAX_DEPTH, "nested too deep")
    r.i += 1
    end = c + 2  # '}' or ']'
    out = {} if c == 123 else []
    each = (hooks or out.append) if c == 91 else None
    if r._peek() == end:
        r.i += 1
        return out
    while True:
        if each is None:
            if r._peek() != 34:
                _bad()
            k = r._str()
            if r._peek() != 58:
                _bad()
            r.i += 1
            sink = hooks.get(k) if hooks else None
            if sink is not None and r._peek() == 91:
                sink.start()
                _nested(r, 91, sink.add, depth + 1)
                out[k] = sink
            else:
                out[k] = _value(r, depth)
        else:
            each(_value(r, depth))
        d = r._peek()
        r.i += 1
        if d == end:
            return out
        if d != 44:
            _bad()


def _body(src, hooks, buf):
    r = Body(src, buf)
    if r._peek() != 123:
        _bad("body is not an object")
    doc = _nested(r, 123, hooks, 1)
    if r._peek() != -1:
        _bad()
    return r, doc


def body(src, hooks=None, buf=None):
    """(body dict, SHA-256 of the body) of line 1 alone, unchecked (a slot's manifest.json, verified when
    it was installed); arguments as read's."""
    r, doc = _body(src, hooks, buf)
    return doc, r.h.digest()


def read(src, hooks=None, buf=None, sigs=None):
    """(body dict, signatures, SHA-256 of the body) of a signed metadata file; Refused(MALFORMED) if it is
    not one. `src`: the file as bytes, or a stream (read through `buf`); `sigs`: line 2 (bytes) when it is
    kept apart (the OTA client stores the two lines in two files), `src` then holds the body alone;
    `hooks`: a top-level key -> a sink for the elements of its array (see _nested; manifest.Files)."""
    r, doc = _body(src, hooks, buf)
    if sigs is None:
        sigs = r.rest(MAX_SIGS)
    else:
        _need(r.tail is None or not len(r.tail), "more than two lines")
    n = len(sigs)
    if n and sigs[n - 1] == 10:
        n -= 1
    sigs = bytes(memoryview(sigs)[:n])
    _need(b"\n" not in sigs, "more than two lines")
    try:
        sigs = json.loads(sigs)
    except ValueError:
        _bad()
    _need(type(sigs) is list, "signatures are not a list")
    for s in sigs:
        _need(type(s) is dict and type(s.get("keyid")) is str and type(s.get("sig")) is str,
              "a signature lacks keyid or sig")
    _need(doc.get("format") == FORMAT and type(doc.get("format")) is int, "unknown format version")
    return doc, sigs, r.h.digest()
