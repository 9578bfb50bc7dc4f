"""The payload format's one declaration, firmware/bysans/payload_spec.py, loaded by file path.

The host never imports the firmware package: it executes that one data module on its own
(fleet.firmware_data), so encoder (firmware) and decoder (here and the generated JavaScript) read the
same tables.
"""

from pathlib import Path
from types import ModuleType

from .. import firmware_data

SPEC = "bysans/payload_spec.py"


def spec_path() -> Path:
    return firmware_data.firmware_file(SPEC)


def load_spec(path: Path | None = None) -> ModuleType:
    """The spec module (VERSION, KINDS, channel tables, ...)."""
    return firmware_data.load(path or spec_path())


def spec_tables(path: Path | None = None) -> dict:
    """The spec as plain JSON-able data, for the JavaScript generator and for documentation: "kinds" those
    of the version the firmware writes ("version"), "versions" every version a decoder reads (old frames
    still decode with their own tables)."""
    s = load_spec(path)
    versions = {str(s.VERSION): _kinds(s, s.KINDS)}
    for v, kinds in sorted(getattr(s, "OLDER_KINDS", {}).items()):
        versions[str(v)] = _kinds(s, kinds)
    return {
        "version": s.VERSION, "kind_shift": s.KIND_SHIFT, "kind_mask": s.KIND_MASK, "count_mask": s.COUNT_MASK,
        "net_flag": s.NET_FLAG, "net_code_mask": s.NET_CODE_MASK, "net_status_names": list(s.NET_STATUS_NAMES),
        "interval_bits": s.INTERVAL_BITS, "mode_bits": s.MODE_BITS, "rice_escape": s.RICE_ESCAPE,
        "age_bits": s.AGE_BITS, "kinds": versions[str(s.VERSION)],
        "versions": {v: {"kinds": versions[v]} for v in sorted(versions, key=int)},
    }


def _kinds(s, table) -> dict:
    kinds = {}
    for kind, (name, channels, frame_fields, flag_names) in sorted(table.items()):
        kinds[str(kind)] = {
            "name": name,
            "channels": [{"name": c[0], "flags": c[1] == s.FLAGS, "bits": c[2], "min": c[3], "step": c[4]}
                         for c in channels],
            "frame_fields": [{"name": f[0], "bits": f[1]} for f in frame_fields],
            "flag_names": list(flag_names),
        }
    return kinds
