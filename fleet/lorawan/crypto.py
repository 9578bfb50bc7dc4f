"""LoRaWAN 1.0.x cryptography with `cryptography`'s AES and CMAC.

Keys are `Key` objects (bytes that never show themselves in repr, str or format), so a traceback or a log
line cannot carry one.
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives import cmac as _cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..errors import LoRaWANKeyError

UPLINK = 0
DOWNLINK = 1


class Key(bytes):
    """A 16-byte AES key that does not print itself."""

    name: str

    def __new__(cls, value: bytes | bytearray | str, name: str = "key"):
        if isinstance(value, str):
            text = value.strip().replace(" ", "").replace(":", "")
            if text.lower().startswith("0x"):
                text = text[2:]
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                what = ("has an odd number of hex digits" if len(text) % 2 and
                        all(c in "0123456789abcdefABCDEF" for c in text) else "is not hexadecimal")
                raise LoRaWANKeyError(f"{name} {what}") from None
        else:
            raw = bytes(value)
        if len(raw) != 16:
            raise LoRaWANKeyError(f"{name} must be 16 bytes (32 hex digits), got {len(raw)} bytes")
        obj = super().__new__(cls, raw)
        obj.name = name
        return obj

    def __repr__(self) -> str:
        return f"<Key {getattr(self, 'name', 'key')}: 16 bytes>"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def hex(self, *a, **k):  # noqa: D102 - a key is not meant to be turned back into text by accident
        raise TypeError("a Key does not print itself; use bytes(key).hex() if you really mean it")


def as_key(value, name: str = "key") -> Key:
    return value if isinstance(value, Key) else Key(value, name)


def aes_encrypt(key: bytes, block: bytes) -> bytes:
    e = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def aes_decrypt(key: bytes, block: bytes) -> bytes:
    d = Cipher(algorithms.AES(bytes(key)), modes.ECB()).decryptor()
    return d.update(block) + d.finalize()


def aes_cmac(key: bytes, data: bytes) -> bytes:
    c = _cmac.CMAC(algorithms.AES(bytes(key)))
    c.update(data)
    return c.finalize()


def frm_crypt(key: bytes, dev_addr: int, fcnt: int, direction: int, data: bytes) -> bytes:
    """FRMPayload encryption = decryption (LoRaWAN 1.0.x §4.3.3)."""
    if not data:
        return b""
    nblocks = (len(data) + 15) // 16
    a = b"".join(struct.pack("<BIBIIBB", 1, 0, direction, dev_addr, fcnt & 0xFFFFFFFF, 0, i)
                 for i in range(1, nblocks + 1))
    s = aes_encrypt(key, a)
    return bytes(x ^ y for x, y in zip(data, s))


def b0(dev_addr: int, fcnt: int, direction: int, msg_len: int) -> bytes:
    return struct.pack("<BIBIIBB", 0x49, 0, direction, dev_addr, fcnt & 0xFFFFFFFF, 0, msg_len)


def data_mic(nwk_skey: bytes, msg: bytes, dev_addr: int, fcnt: int, direction: int) -> bytes:
    """MIC of a data frame: msg is MHDR..FRMPayload; fcnt the full 32-bit counter."""
    return aes_cmac(nwk_skey, b0(dev_addr, fcnt, direction, len(msg)) + msg)[:4]


def join_mic(app_key: bytes, msg: bytes) -> bytes:
    return aes_cmac(app_key, msg)[:4]


def derive_session_keys(app_key: bytes, join_nonce: bytes, net_id: bytes, dev_nonce: int) -> tuple[Key, Key]:
    """(NwkSKey, AppSKey) for LoRaWAN 1.0.x; join_nonce and net_id as carried in the join-accept (3 bytes,
    little-endian), dev_nonce an int."""
    if len(join_nonce) != 3 or len(net_id) != 3:
        raise ValueError("JoinNonce and NetID are 3 bytes")
    tail = bytes(join_nonce) + bytes(net_id) + struct.pack("<H", dev_nonce) + bytes(7)
    return (Key(aes_encrypt(app_key, b"\x01" + tail), "NwkSKey"),
            Key(aes_encrypt(app_key, b"\x02" + tail), "AppSKey"))
