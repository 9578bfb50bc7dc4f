"""A device's LoRaWAN identity: DevEUI, JoinEUI and AppKey (LoRaWAN 1.0.x OTAA).

- DevEUI: the EUI-64 of the chip's 48-bit MAC where there is one (the MAC's OUI, FFFE, the MAC's last three
  bytes: 24:0A:C4:12:34:56 -> 240AC4FFFE123456), else 8 random bytes marked locally administered.
- JoinEUI: given, else FLEET_JOIN_EUI, else 0000000000000000 (a network server's own join server).
- AppKey: 16 bytes from the operating system's CSPRNG.

EUIs are kept as 16 upper-case hex digits. An `Identity`'s repr and str never show the AppKey.
"""

import os
import re
import secrets
from dataclasses import dataclass, field

from .errors import BadIdentifier

ENV_JOIN_EUI = "FLEET_JOIN_EUI"
DEFAULT_JOIN_EUI = "0000000000000000"
_SEP = re.compile(r"[\s:\-.]")


@dataclass(frozen=True)
class Identity:
    dev_eui: str
    join_eui: str
    app_key: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"Identity(dev_eui={self.dev_eui!r}, join_eui={self.join_eui!r}, app_key=<hidden>)"

    __str__ = __repr__


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
            raise BadIdentifier(f"{shown} is not a {what} ({2 * n_bytes} hex digits)")
        raw = bytes.fromhex(s)
    if len(raw) != n_bytes:
        raise BadIdentifier(f"a {what} is {n_bytes} bytes, not {len(raw)}")
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


def random_dev_eui() -> str:
    """8 random bytes, marked locally administered (bit 1 of the first byte) and unicast (bit 0 clear)."""
    b = bytearray(secrets.token_bytes(8))
    b[0] = (b[0] | 0x02) & ~0x01 & 0xFF
    return bytes(b).hex().upper()


def new_app_key() -> bytes:
    return secrets.token_bytes(16)


def default_join_eui() -> str:
    env = os.environ.get(ENV_JOIN_EUI)
    return parse_eui(env, f"JoinEUI (from {ENV_JOIN_EUI})") if env else DEFAULT_JOIN_EUI


def new_identity(*, mac=None, dev_eui=None, join_eui=None, app_key=None) -> Identity:
    """A fresh identity: DevEUI from `dev_eui`, else from `mac`, else random; AppKey given or new.

    When both `dev_eui` and `mac` are given they must agree.
    """
    if dev_eui is not None:
        eui = parse_eui(dev_eui)
        if mac is not None and eui64_from_mac(mac) != eui:
            raise BadIdentifier(f"DevEUI {eui} is not the EUI-64 of MAC {parse_mac(mac).hex(':')} "
                                f"({eui64_from_mac(mac)})", hint="give the MAC or the DevEUI, or make them agree")
    elif mac is not None:
        eui = eui64_from_mac(mac)
    else:
        eui = random_dev_eui()
    return Identity(dev_eui=eui,
                    join_eui=parse_eui(join_eui, "JoinEUI") if join_eui is not None else default_join_eui(),
                    app_key=parse_app_key(app_key) if app_key is not None else new_app_key())
