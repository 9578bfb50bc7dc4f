"""Check-in authentication (docs/ota.md, "Check-in keys"; device side: firmware/bysans/ota/checkin.py).

Each device has its own 32-byte check-in key: provisioning writes it (hex) into the device's
ota/config.json as "checkin_key"; the registry keeps it sealed (fleet/registry/sealing.py, context
"<DEVICE>/checkin_key"). A check-in is

    POST /api/checkin?mac=<64 hex: HMAC-SHA256(key, body)>      body: the check-in JSON, with "seq"

where "seq" is a whole number above every seq the device sent before (the device keeps the last one in
ota/seq and sends max(last + 1, its clock in Unix seconds)), so a recorded check-in cannot be replayed.
The MAC covers the body's bytes exactly as sent: no JSON canonicalisation has to agree.

Pure helpers here; OtaStore.authenticate() looks keys up and keeps the counters.
"""

import hashlib
import hmac
import os
import re

from ..errors import UsageError

KEY_BYTES = 32
SEAL_FIELD = "checkin_key"
MAX_SEQ = 2**62
_MAC = re.compile(r"^[0-9a-fA-F]{64}$")


class CheckinKey:
    """A device's check-in key. Its repr and str never show the key; .hex() is for the device's config."""

    __slots__ = ("device", "_raw")

    def __init__(self, device: str, raw: bytes):
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != KEY_BYTES:
            raise UsageError(f"a check-in key is {KEY_BYTES} bytes")
        self.device = device
        self._raw = bytes(raw)

    @classmethod
    def new(cls, device: str) -> "CheckinKey":
        return cls(device, os.urandom(KEY_BYTES))

    @property
    def raw(self) -> bytes:
        return self._raw

    def hex(self) -> str:
        return self._raw.hex()

    def __repr__(self) -> str:
        return f"<CheckinKey for {self.device}>"

    __str__ = __repr__


def seal_context(device: str) -> str:
    return f"{device}/{SEAL_FIELD}"


def body_mac(key: bytes, body: bytes) -> str:
    """The MAC a device sends for `body`: HMAC-SHA256 in lower-case hex."""
    return hmac.new(bytes(key), body, hashlib.sha256).hexdigest()


def mac_matches(key: bytes, body: bytes, mac: str | None) -> bool:
    if not isinstance(mac, str) or not _MAC.match(mac):
        return False
    return hmac.compare_digest(body_mac(key, body), mac.lower())


def seq_of(report: dict) -> int | None:
    """The report's "seq" if it is a whole number in range, else None."""
    seq = report.get("seq")
    return seq if type(seq) is int and 0 < seq < MAX_SEQ else None


def key_bytes(key) -> bytes:
    """A CheckinKey, 32 bytes, or 64 hex digits -> the 32 bytes (the value is never echoed)."""
    if isinstance(key, CheckinKey):
        return key.raw
    if isinstance(key, str):
        try:
            key = bytes.fromhex(key)
        except ValueError:
            raise UsageError("a check-in key is 64 hex digits") from None
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
        raise UsageError(f"a check-in key is {KEY_BYTES} bytes (64 hex digits)")
    return bytes(key)
