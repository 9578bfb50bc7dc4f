"""Decodes the update report (docs/formats/update-report.md): what became of an update that came over LoRaWAN,
declared once in firmware/bysans/update_report_spec.py and loaded by path (fleet.firmware_data), with the
refusal codes of firmware/bysans/ota/reasons.py."""

from functools import lru_cache

from .. import firmware_data
from ..errors import PayloadDecodeError

SPEC = "bysans/update_report_spec.py"
REASONS = "bysans/ota/reasons.py"


@lru_cache(maxsize=1)
def report_tables() -> dict:
    """The report's declaration as plain JSON-able data (for the JavaScript codecs, ingest and the docs)."""
    s = firmware_data.load(firmware_data.firmware_file(SPEC))
    r = firmware_data.load(firmware_data.firmware_file(REASONS))
    return {"version": s.VERSION, "fport": s.FPORT, "length": s.LENGTH, "repeat": s.REPEAT,
            "events": list(s.EVENTS), "refusals": list(r.NAMES), "rollback_reasons": list(s.ROLLBACK_REASONS)}


def _hint(t):
    return (f"an update report comes on FPort {t['fport']} and has {t['length']} bytes "
            f"(docs/formats/update-report.md); 'fleet codec decode HEX --fport {t['fport']}' shows where it breaks")


def decode_report(payload: bytes) -> dict:
    """One report -> {"update_report": version, "event", "reason" (a name or None), "counter" (None: not
    known)}; PayloadDecodeError naming the byte otherwise."""
    t = report_tables()
    data = bytes(payload)
    if not data:
        raise PayloadDecodeError("an empty update report", offset=0, hint=_hint(t))
    if data[0] != t["version"]:
        raise PayloadDecodeError(f"unknown update report version {data[0]} (this decoder reads {t['version']})",
                                 offset=0, hint=_hint(t))
    if len(data) != t["length"]:
        raise PayloadDecodeError(f"an update report has {t['length']} bytes, got {len(data)}",
                                 offset=min(len(data), t["length"]), hint=_hint(t))
    event, reason, counter = data[1], data[2], int.from_bytes(data[3:7], "big")
    if not 1 <= event < len(t["events"]):
        raise PayloadDecodeError(f"unknown update report event {event}", offset=1, hint=_hint(t))
    name = t["events"][event]
    table = {"refused": t["refusals"], "rolled_back": t["rollback_reasons"]}.get(name)
    if table is None or reason == 0:
        why = None
    else:
        why = table[reason] if reason < len(table) else "unknown"
    return {"update_report": data[0], "event": name, "reason": why, "counter": counter or None}
