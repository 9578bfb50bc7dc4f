# Check-in authentication on the device (docs/ota.md "Check-in keys"; host side: fleet/rollout/auth.py).
# The body of each check-in carries "seq", above every seq sent before (max(last + 1, the clock), the last one
# kept in ota/seq), and is sent as POST /api/checkin?mac=<hex HMAC-SHA256(key, body)> under the device's
# check-in key (ota/config.json "checkin_key", 64 hex digits). HMAC (RFC 2104) is written out here because
# MicroPython has hashlib.sha256 but no hmac module: one 64-byte pad, two hashes, nothing kept.
import binascii
import hashlib

from . import slots

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_BLOCK = const(64)  # SHA-256's block size
_IPAD = const(0x36)
_IPAD_TO_OPAD = const(0x6A)  # 0x36 ^ 0x5C: turns the inner pad into the outer one in place


def hmac_sha256(key, msg):
    """HMAC-SHA256(key, msg) as 32 bytes."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    pad = bytearray(_BLOCK)
    pad[:len(key)] = key
    for i in range(_BLOCK):
        pad[i] ^= _IPAD
    h = hashlib.sha256(pad)
    h.update(msg)
    inner = h.digest()
    for i in range(_BLOCK):
        pad[i] ^= _IPAD_TO_OPAD
    h = hashlib.sha256(pad)
    h.update(inner)
    return h.digest()


def mac_hex(key_hex, body):
    """The ?mac= value for `body` under the key from the config. ValueError (without the key) if the key
    is not hex."""
    try:
        key = binascii.unhexlify(key_hex)
    except (ValueError, TypeError):
        raise ValueError("checkin_key is not hex")
    return binascii.hexlify(hmac_sha256(key, body)).decode()


def next_seq(path, now):
    """The next check-in's seq: above the last one (kept at `path`, written before it is used, so a power
    cut can only skip numbers), and at least the clock, so a lost file does not reuse old numbers on a board
    that knows the time."""
    try:
        with open(path) as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 0
    now = int(now)
    seq = last + 1 if last >= now else now
    slots.write_atomic(path, str(seq))
    return seq
