"""Signed metadata files: canonical JSON body, one signature line (docs/formats/update-repository.md).

    line 1: the body, canonical JSON: keys sorted, no spaces, ASCII only, integers only (no floats)
    line 2: [{"keyid": "<32 hex>", "sig": "<128 hex>"}, ...]   Ed25519 over SHA-256(line 1)

Why this and not a binary layout or JSON re-canonicalised by the verifier: the device hashes the bytes of
line 1 exactly as received (in the same pass that parses them, through a small buffer), so no canonicaliser has to agree across CPython and
MicroPython (whose json has no sort_keys). Canonical output on the host makes builds reproducible and the
files diffable; `head -1 file | jq` shows a body. A canonical body cannot contain a newline byte (JSON
escapes it inside strings), so the first newline always ends the signed bytes.
"""

import hashlib
import json
import re
import time
from datetime import datetime, timezone

from ..errors import UsageError
from .reasons import TABLE

# The format's version and the two document types, as the device checks them (firmware/bysans/ota/reasons.py)
FORMAT = TABLE.FORMAT
ROOT_TYPE = TABLE.ROOT_TYPE
RELEASE_TYPE = TABLE.RELEASE_TYPE


def _check_types(obj, where="body"):
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return
    if isinstance(obj, float):
        raise UsageError(f"metadata cannot hold a float ({where}): use scaled integers")
    if isinstance(obj, list):
        for i, x in enumerate(obj):
            _check_types(x, f"{where}[{i}]")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise UsageError(f"metadata keys are strings ({where})")
            _check_types(v, f"{where}.{k}")
        return
    raise UsageError(f"metadata cannot hold a {type(obj).__name__} ({where})")


def canonical(obj) -> bytes:
    """The canonical JSON bytes of `obj`."""
    _check_types(obj)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def digest(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


def sign(body: dict, signers) -> bytes:
    """The signed metadata file for `body`, signed by every Signer in `signers` (distinct keys)."""
    raw = canonical(body)
    d = digest(raw)
    sigs, seen = [], set()
    for s in signers:
        if s.keyid in seen:
            continue
        seen.add(s.keyid)
        sigs.append({"keyid": s.keyid, "sig": s.sign(d).hex()})
    return raw + b"\n" + canonical(sigs) + b"\n"


def unsigned(body: dict) -> bytes:
    """A metadata file with no signature yet (a built, not yet signed release)."""
    return canonical(body) + b"\n[]\n"


def body_of(data: bytes) -> dict:
    """The body of a metadata file, unverified (for tools that then verify or re-sign it)."""
    line = bytes(data).split(b"\n", 1)[0]
    try:
        doc = json.loads(line)
    except ValueError:
        raise UsageError("not a metadata file (its first line is not JSON)") from None
    if not isinstance(doc, dict):
        raise UsageError("not a metadata file")
    return doc


_KODE = re.compile(r"^\d{1,4}$")


def kommunekode(value) -> str:
    """A kommunekode as the 4 digits metadata use: 751, '751' and '0751' all give '0751'."""
    text = str(value).strip()
    if not _KODE.match(text) or int(text) == 0:
        raise UsageError(f"'{value}' is not a kommunekode",
                         hint="a kommunekode has up to 4 digits, e.g. 751 or 0751 for Aarhus")
    try:  # the 98 kommuner, when the registry's table is there: a typo names the closest ones
        from ..registry.kommuner import lookup
    except ImportError:
        return f"{int(text):04d}"
    return lookup(text).kode


_SPAN = re.compile(r"^(\d+)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """'30d', '12h', '2w', '90m', '45s' -> seconds."""
    m = _SPAN.match(str(text).strip().lower())
    if not m:
        raise UsageError(f"'{text}' is not a duration", hint="write e.g. 30d, 12h, 2w")
    return int(m.group(1)) * _UNIT[m.group(2)]


def parse_time(text: str) -> int:
    """Unix seconds from an ISO 8601 date or time (UTC unless it says otherwise), or '@SECONDS'."""
    text = str(text).strip()
    if text.startswith("@") and text[1:].isdigit():
        return int(text[1:])
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"'{text}' is not a date or time",
                         hint="write e.g. 2026-01-31, 2026-01-31T12:00:00+01:00 or @1767225600") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> int:
    return int(time.time())
