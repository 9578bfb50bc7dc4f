"""Decodes the diagnostics record (docs/formats/diagnostics.md), declared once in
firmware/bysans/diag_spec.py and loaded by path, as fleet.codec.spec loads the payload spec."""

from functools import lru_cache

from .. import firmware_data
from ..errors import PayloadDecodeError

SPEC = "bysans/diag_spec.py"
_HINT = ("a diagnostics record comes on FPort 221 and has 12 bytes (docs/formats/diagnostics.md); "
         "'fleet codec decode HEX --fport 221' shows where it breaks")


@lru_cache(maxsize=1)
def diag_tables() -> dict:
    """The record's declaration as plain JSON-able data (for the JavaScript codecs and the docs)."""
    s = firmware_data.load(firmware_data.firmware_file(SPEC))
    return {"version": s.VERSION, "fport": s.FPORT, "length": s.LENGTH, "heap_unit": s.HEAP_UNIT,
            "heap_none": s.HEAP_NONE, "causes": list(s.CAUSES), "fields": [list(f) for f in s.FIELDS],
            "send_every_s": s.SEND_EVERY_S}


def decode_diag(payload: bytes) -> dict:
    """One record -> {"diag": version, "reset_cause", "boots", "watchdog_resets", "heap_min" (bytes or
    None), "exception" (8 hex digits or None)}; PayloadDecodeError naming the byte otherwise."""
    t = diag_tables()
    data = bytes(payload)
    if not data:
        raise PayloadDecodeError("an empty diagnostics record", offset=0, hint=_HINT)
    if data[0] != t["version"]:
        raise PayloadDecodeError(f"unknown diagnostics version {data[0]} (this decoder reads {t['version']})",
                                 offset=0, hint=_HINT)
    if len(data) != t["length"]:
        raise PayloadDecodeError(f"a diagnostics record has {t['length']} bytes, got {len(data)}",
                                 offset=min(len(data), t["length"]), hint=_HINT)
    out, pos = {"diag": data[0]}, 1
    for name, n in t["fields"]:
        out[name] = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    causes = t["causes"]
    out["reset_cause"] = causes[out["reset_cause"]] if out["reset_cause"] < len(causes) else "unknown"
    out["heap_min"] = None if out["heap_min"] == t["heap_none"] else out["heap_min"] * t["heap_unit"]
    out["exception"] = f"{out['exception']:08x}" if out["exception"] else None
    return out
