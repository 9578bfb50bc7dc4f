"""Manifest deltas: a release's signed manifest as copy and add operations against the body of a release a
board already runs (docs/formats/update-repository.md, "Manifest deltas"). The layout is declared in the
device's reader, firmware/bysans/ota/delta.py; this is its host twin (`make` for `fleet release publish`,
`apply` for checks and tests). A delta carries no trust: the board verifies the rebuilt file like any other.
"""

import difflib
import hashlib
import re
import struct

from ..errors import ReleaseError

MAGIC = b"BMD\x01"
HEADER = 40
OP_END, OP_COPY, OP_ADD = 0, 1, 2
_MAX_PIECE = 0xFFFF

# Tokens of canonical JSON: a separator, or the run of bytes between two (a string, a number, a key).
_TOKEN = re.compile(rb'[{}\[\],:]|[^{}\[\],:]+')


def make(base_body: bytes, signed: bytes) -> bytes:
    """The delta that rebuilds `signed` (a two-line signed file) from `base_body` (line 1 of another)."""
    body, sep, sigs = signed.partition(b"\n")
    if not sep or b"\n" in base_body:
        raise ReleaseError("a manifest delta needs a signed file and a body without its newline")
    old = _TOKEN.findall(base_body)
    new = _TOKEN.findall(body)
    offsets = [0]
    for t in old:
        offsets.append(offsets[-1] + len(t))
    ops = []
    sm = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            ops.append((OP_COPY, offsets[i1], offsets[i2] - offsets[i1]))
        elif tag in ("replace", "insert"):
            ops.append((OP_ADD, b"".join(new[j1:j2])))
    out = bytearray(MAGIC + hashlib.sha256(base_body).digest() + struct.pack("<I", len(body)))
    for op in ops:
        if op[0] == OP_COPY:
            off, n = op[1], op[2]
            while n:
                k = min(n, _MAX_PIECE)
                out += struct.pack("<BIH", OP_COPY, off, k)
                off, n = off + k, n - k
        else:
            data = op[1]
            for i in range(0, len(data), _MAX_PIECE):
                piece = data[i:i + _MAX_PIECE]
                out += struct.pack("<BH", OP_ADD, len(piece)) + piece
    out += bytes([OP_END]) + sigs
    return bytes(out)


def apply(delta: bytes, base_body: bytes) -> bytes:
    """The signed file a delta rebuilds from `base_body`; ReleaseError for one that does not fit it."""
    if len(delta) < HEADER + 1 or delta[:4] != MAGIC:
        raise ReleaseError("not a manifest delta of format 1")
    if delta[4:36] != hashlib.sha256(base_body).digest():
        raise ReleaseError("the delta is for another base manifest")
    (want,) = struct.unpack_from("<I", delta, 36)
    body = bytearray()
    i = HEADER
    try:
        while True:
            op = delta[i]
            i += 1
            if op == OP_END:
                break
            if op == OP_COPY:
                off, n = struct.unpack_from("<IH", delta, i)
                i += 6
                if off + n > len(base_body):
                    raise ReleaseError("the delta copies past the base manifest")
                body += base_body[off:off + n]
            elif op == OP_ADD:
                (n,) = struct.unpack_from("<H", delta, i)
                i += 2
                if i + n > len(delta):
                    raise ReleaseError("the delta ends inside an operation")
                body += delta[i:i + n]
                i += n
            else:
                raise ReleaseError(f"unknown delta operation {op}")
    except (IndexError, struct.error):
        raise ReleaseError("the delta ends inside an operation") from None
    if len(body) != want:
        raise ReleaseError(f"the delta builds {len(body)} of {want} bytes")
    return bytes(body) + b"\n" + delta[i:]
