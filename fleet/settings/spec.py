"""The settings downlink's one declaration, firmware/bysans/settings_spec.py, loaded by file path, and the
host's side of it: the command frame it writes and the acknowledgement frame it reads
(docs/formats/settings.md)."""

from dataclasses import dataclass
from types import ModuleType

from .. import firmware_data
from ..errors import MalformedUplink, UsageError

SPEC = "bysans/settings_spec.py"
WASTE_ONLY = ("fill_alarm_bp", "fire_threshold_cdeg")  # what an environment node has no use for


def load_spec() -> ModuleType:
    return firmware_data.load(SPEC)


@dataclass(frozen=True)
class Key:
    id: int
    name: str
    nbytes: int
    lo: int
    hi: int
    step: int


def keys() -> dict[str, Key]:
    """The settable keys by name, in the format's order."""
    return {k[1]: Key(*k) for k in load_spec().KEYS}


def check_value(name: str, value) -> int:
    """`value` (an int or the text of one) for the settable `name`; UsageError naming the bounds otherwise."""
    ks = keys()
    if name not in ks:
        raise UsageError(f"'{name}' is not a setting a downlink can change",
                         hint=f"settable: {', '.join(ks)} (docs/formats/settings.md)")
    k = ks[name]
    try:
        v = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        v = None
    if v is None or not k.lo <= v <= k.hi or v % k.step:
        step = f" in steps of {k.step}" if k.step > 1 else ""
        raise UsageError(f"{name}={value} is out of range: allowed {k.lo} to {k.hi}{step}",
                         hint="the node refuses such a value too; nothing was queued")
    return v


def parse_assignments(items) -> dict[str, int]:
    """['interval_s=900', ...] -> {'interval_s': 900}, each checked."""
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"'{item}' is not key=value", hint="e.g. interval_s=900 batch_max_age_s=3600")
        if name in out:
            raise UsageError(f"'{name}' is given twice", hint="give each setting once")
        out[name] = check_value(name, value.strip())
    if not out:
        raise UsageError("no setting given", hint=f"e.g. interval_s=900; settable: {', '.join(keys())}")
    return out


def encode_command(seq: int, values: dict[str, int], *, check: bool = True) -> bytes:
    """The command frame. check=False writes a value outside its bounds as it is (for tests of the node's
    own refusal); it must still fit the key's bytes."""
    s = load_spec()
    if not 1 <= seq <= s.SEQ_MAX:
        raise UsageError(f"settings seq {seq} is outside 1..{s.SEQ_MAX}",
                         hint="this device has used every sequence number the format has")
    ks = keys()
    out = bytearray([s.VERSION, seq >> 8, seq & 0xFF])
    for name, v in values.items():
        if check:
            v = check_value(name, v)
        k = ks[name]
        out.append(k.id)
        out += int(v).to_bytes(k.nbytes, "big")
    return bytes(out)


def decode_ack(payload: bytes) -> list[tuple[int, str]]:
    """[(seq, result name)] of an acknowledgement frame; MalformedUplink if it is not one."""
    s = load_spec()
    if len(payload) < 4 or (len(payload) - 1) % 3 or payload[0] != s.VERSION:
        raise MalformedUplink("bad_settings_ack", f"not a settings acknowledgement v{s.VERSION}: {payload.hex()}")
    out = []
    for i in range(1, len(payload), 3):
        seq, result = int.from_bytes(payload[i:i + 2], "big"), payload[i + 2]
        if result >= len(s.RESULT_NAMES):
            raise MalformedUplink("bad_settings_ack", f"unknown settings result {result} (byte {i + 2})")
        out.append((seq, s.RESULT_NAMES[result]))
    return out


def fport() -> int:
    return load_spec().FPORT
