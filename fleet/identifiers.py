"""A device's LoRaWAN identifiers as values: DevEUI, JoinEUI and AppKey parsed and checked, a MAC's EUI-64,
and the `Identity` that holds the three (LoRaWAN 1.0.x OTAA).

EUIs are kept as 16 upper-case hex digits. An `Identity`'s repr and str never show the AppKey. Making a
new identity for a board (random EUIs, a fresh AppKey) is enrollment's: provisioning/identity.py.
"""

import re
from dataclasses import dataclass, field

from .errors import BadIdentifier

_SEP = re.compile(r"[\s:\-.]")


@dataclass(frozen=True)
class Identity:
    dev_eui: str
    join_eui: str
    app_key: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"Identity(dev_eui={self.dev_eui!r}, join_eui={self.join_eui!r}, app_key=<hidden>)"

    __str__ = __repr__


def _a(word: str) -> str:
    """'an AppKey', 'a DevEUI', 'a MAC address': the article as the word is said."""
    return ("an " if word[:1].lower() in "aeio" else "a ") + word


def _hex(text, n_bytes: int, what: str) -> bytes:
    if isinstance(text, (bytes, bytearray)):
        raw = bytes(text)
    else:
        s = _SEP.sub("", str(text))
        if s.lower().startswith("0x"):
            s = s[2:]
        if len(s) != 2 * n_bytes or not re.fullmatch(r"[0-9A-Fa-f]*", s):
            # The AppKey is secret even when malformed: never echo it.
            shown = "the value" if what == "AppKey" else f"'{text}'"
            raise BadIdentifier(f"{shown} is not {_a(what)} ({2 * n_bytes} hex digits)")
        raw = bytes.fromhex(s)
    if len(raw) != n_bytes:
        raise BadIdentifier(f"{_a(what)} is {n_bytes} bytes, not {len(raw)}")
    return raw


def parse_eui(text, what: str = "DevEUI") -> str:
    """'70-b3-d5-7e-d0-00-00-01', '70B3D57ED0000001' -> '70B3D57ED0000001'."""
    return _hex(text, 8, what).hex().upper()


def parse_mac(text) -> bytes:
    """A 48-bit MAC ('24:0a:c4:12:34:56', '240AC4123456' or 6 bytes)."""
    return _hex(text, 6, "MAC address")


def parse_app_key(text) -> bytes:
    return _hex(text, 16, "AppKey")


def eui64_from_mac(mac) -> str:
    """EUI-64 from a MAC-48 by inserting FFFE after the OUI (IEEE's EUI-48 to EUI-64 mapping)."""
    m = parse_mac(mac)
    return (m[:3] + b"\xff\xfe" + m[3:]).hex().upper()
