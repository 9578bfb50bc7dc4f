"""The Semtech packet-forwarder protocol (v2, UDP) between a gateway and a network server, declared once:
the virtual gateway (fleet/sim/devices/air.py) and the lab network server (lab/netserver.py) build and read
their datagrams here (Semtech packet_forwarder, PROTOCOL.TXT v2).

    datagram = version (1) | token (2, random, echoed by the answer) | identifier (1)
               | gateway EUI (8, only from the gateway: PUSH_DATA, PULL_DATA, TX_ACK) | JSON body (or none)

    gateway -> server   PUSH_DATA {"rxpk": [...]}   answered by PUSH_ACK
                        PULL_DATA (keep-alive: where to send downlinks)   answered by PULL_ACK
                        TX_ACK {"txpk_ack": {"error": "NONE" | "TOO_LATE" | ...}}   answers a PULL_RESP
    server -> gateway   PULL_RESP {"txpk": {...}}

`tmst` is the gateway's free-running microsecond counter: 32 bits, wrapping (TMST_WRAP).
"""

from typing import NamedTuple

PROTOCOL_VERSION = 2
PUSH_DATA, PUSH_ACK, PULL_DATA, PULL_RESP, PULL_ACK, TX_ACK = 0, 1, 2, 3, 4, 5
FROM_GATEWAY = frozenset({PUSH_DATA, PULL_DATA, TX_ACK})  # the identifiers followed by the gateway's EUI
EUI_BYTES = 8
HEADER_BYTES = 4
TMST_WRAP = 1 << 32


class Datagram(NamedTuple):
    ident: int
    token: bytes
    eui: bytes   # empty unless ident is in FROM_GATEWAY
    body: bytes  # the JSON body, or b""


def datagram(ident: int, token: bytes, *, eui: bytes = b"", body: bytes = b"") -> bytes:
    """One datagram. `eui` is the gateway's 8 bytes, given exactly when `ident` is in FROM_GATEWAY."""
    if len(token) != 2:
        raise ValueError("a token is 2 bytes")
    if (ident in FROM_GATEWAY) != (len(eui) == EUI_BYTES):
        raise ValueError(f"identifier {ident} {'needs' if ident in FROM_GATEWAY else 'takes no'} gateway EUI")
    return bytes([PROTOCOL_VERSION]) + token + bytes([ident]) + eui + body


def parse(data: bytes) -> Datagram | None:
    """The datagram in `data`, or None when it is not one of this protocol version (to be ignored)."""
    if len(data) < HEADER_BYTES or data[0] != PROTOCOL_VERSION:
        return None
    ident = data[3]
    if ident in FROM_GATEWAY:
        return Datagram(ident, bytes(data[1:3]), bytes(data[4:4 + EUI_BYTES]), bytes(data[4 + EUI_BYTES:]))
    return Datagram(ident, bytes(data[1:3]), b"", bytes(data[4:]))


def datr(sf: int, bw_khz: int) -> str:
    """(7, 125) -> 'SF7BW125', the LoRa data rate of an rxpk or txpk."""
    return f"SF{sf}BW{bw_khz}"


def parse_datr(text: str) -> tuple[int, int]:
    """'SF7BW125' -> (7, 125)."""
    s, _, b = text.upper().partition("BW")
    if not s.startswith("SF"):
        raise ValueError(f"not a LoRa datr: {text!r}")
    return int(s[2:]), int(b)
