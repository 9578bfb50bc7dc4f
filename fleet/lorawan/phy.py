"""LoRaWAN 1.0.x PHYPayload: decode, encode, check, decrypt; join-request and join-accept both sides.

Layouts (all little-endian on air; EUIs are given and shown most significant byte first, as on labels):

    PHYPayload   MHDR (1) | MACPayload | MIC (4)            MHDR = MType << 5 | Major
    MACPayload   DevAddr (4) | FCtrl (1) | FCnt (2) | FOpts (0..15) | [FPort (1) | FRMPayload]
    FCtrl        ADR 0x80 | ADRACKReq (up) 0x40 | ACK 0x20 | ClassB (up) / FPending (down) 0x10 | FOptsLen
    Join-request MHDR 0x00 | JoinEUI (8) | DevEUI (8) | DevNonce (2) | MIC (4)
    Join-accept  MHDR 0x20 | JoinNonce (3) | NetID (3) | DevAddr (4) | DLSettings | RxDelay | [CFList 16]
                 | MIC (4); all but MHDR encrypted by the server with AES *decrypt* under AppKey
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from ..errors import LoRaWANFrameError, LoRaWANMicError
from . import crypto
from .crypto import DOWNLINK, UPLINK, as_key


class MType(enum.IntEnum):
    JOIN_REQUEST = 0
    JOIN_ACCEPT = 1
    UNCONFIRMED_UP = 2
    UNCONFIRMED_DOWN = 3
    CONFIRMED_UP = 4
    CONFIRMED_DOWN = 5
    REJOIN_REQUEST = 6
    PROPRIETARY = 7

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")

    @property
    def is_data(self) -> bool:
        return 2 <= self <= 5

    @property
    def is_uplink(self) -> bool:
        return self in (MType.JOIN_REQUEST, MType.UNCONFIRMED_UP, MType.CONFIRMED_UP, MType.REJOIN_REQUEST)


_FHDR = struct.Struct("<BIBH")  # MHDR, DevAddr, FCtrl, FCnt16
assert _FHDR.size == 8
_JOIN_REQUEST = struct.Struct("<B8s8sH4s")
assert _JOIN_REQUEST.size == 23
PHY_MAX = 255


def _u32(x: int) -> int:
    return x & 0xFFFFFFFF


@dataclass
class DataFrame:
    """A data frame as it is on air (FRMPayload still encrypted). `fcnt` is the 32-bit counter: the 16
    bits on air plus `fcnt_msb << 16` given to decode()."""

    mtype: MType
    dev_addr: int
    fcnt: int
    fctrl: int = 0
    fopts: bytes = b""
    fport: int | None = None
    frm_payload: bytes = b""
    mic: bytes = b""
    major: int = 0

    @property
    def direction(self) -> int:
        return UPLINK if self.mtype.is_uplink else DOWNLINK

    @property
    def adr(self) -> bool:
        return bool(self.fctrl & 0x80)

    @property
    def adr_ack_req(self) -> bool:
        return self.direction == UPLINK and bool(self.fctrl & 0x40)

    @property
    def ack(self) -> bool:
        return bool(self.fctrl & 0x20)

    @property
    def fpending(self) -> bool:
        return self.direction == DOWNLINK and bool(self.fctrl & 0x10)

    @property
    def class_b(self) -> bool:
        return self.direction == UPLINK and bool(self.fctrl & 0x10)

    def mac_body(self) -> bytes:
        """MHDR..FRMPayload: what the MIC covers."""
        body = _FHDR.pack(self.mtype << 5 | self.major, self.dev_addr, (self.fctrl & 0xF0) | len(self.fopts),
                          self.fcnt & 0xFFFF) + self.fopts
        if self.fport is not None:
            body += bytes([self.fport]) + self.frm_payload
        return body

    def encode(self) -> bytes:
        return self.mac_body() + self.mic

    def expected_mic(self, nwk_skey) -> bytes:
        return crypto.data_mic(as_key(nwk_skey, "NwkSKey"), self.mac_body(), self.dev_addr, self.fcnt,
                               self.direction)

    def check_mic(self, nwk_skey) -> bool:
        import hmac

        return hmac.compare_digest(self.expected_mic(nwk_skey), self.mic)

    def decrypt(self, *, nwk_skey=None, app_skey=None) -> bytes:
        """The plain FRMPayload: NwkSKey for FPort 0 (MAC commands), AppSKey otherwise."""
        if self.fport is None or not self.frm_payload:
            return b""
        if self.fport == 0:
            if nwk_skey is None:
                raise LoRaWANFrameError("FPort 0 carries MAC commands: decrypting them needs the NwkSKey")
            key = as_key(nwk_skey, "NwkSKey")
        else:
            if app_skey is None:
                raise LoRaWANFrameError("decrypting the application payload needs the AppSKey")
            key = as_key(app_skey, "AppSKey")
        return crypto.frm_crypt(key, self.dev_addr, self.fcnt, self.direction, self.frm_payload)


@dataclass
class JoinRequest:
    join_eui: bytes  # label order (MSB first)
    dev_eui: bytes
    dev_nonce: int
    mic: bytes = b""
    mtype: MType = MType.JOIN_REQUEST

    def mac_body(self) -> bytes:
        return _JOIN_REQUEST.pack(0, self.join_eui[::-1], self.dev_eui[::-1], self.dev_nonce, b"")[:19]

    def encode(self) -> bytes:
        return self.mac_body() + self.mic

    def check_mic(self, app_key) -> bool:
        import hmac

        return hmac.compare_digest(crypto.join_mic(as_key(app_key, "AppKey"), self.mac_body()), self.mic)


@dataclass
class JoinAccept:
    """A join-accept in the clear (decode_join_accept gives one; build_join_accept encrypts one)."""

    join_nonce: int
    net_id: int
    dev_addr: int
    rx1_dr_offset: int = 0
    rx2_dr: int = 0
    rx_delay: int = 1
    cflist: bytes | None = None
    mic: bytes = b""
    mtype: MType = MType.JOIN_ACCEPT

    def plain_body(self) -> bytes:
        body = (bytes([0x20]) + struct.pack("<I", self.join_nonce)[:3] + struct.pack("<I", self.net_id)[:3]
                + struct.pack("<IBB", self.dev_addr, (self.rx1_dr_offset & 7) << 4 | (self.rx2_dr & 15),
                              self.rx_delay & 15))
        if self.cflist is not None:
            if len(self.cflist) != 16:
                raise LoRaWANFrameError("a CFList is 16 bytes")
            body += self.cflist
        return body

    def session_keys(self, app_key, dev_nonce: int):
        return crypto.derive_session_keys(as_key(app_key, "AppKey"), struct.pack("<I", self.join_nonce)[:3],
                                          struct.pack("<I", self.net_id)[:3], dev_nonce)


@dataclass
class EncryptedJoinAccept:
    """A join-accept as on air: it needs the AppKey (decode_join_accept) to read."""

    raw: bytes
    mtype: MType = MType.JOIN_ACCEPT


@dataclass
class Proprietary:
    raw: bytes
    mtype: MType = MType.PROPRIETARY


Frame = DataFrame | JoinRequest | EncryptedJoinAccept | Proprietary


def decode(phy: bytes, *, fcnt_msb: int = 0) -> Frame:
    """Parses a PHYPayload. Data frames' MIC and payload stay as on air: check_mic() and decrypt() them.
    fcnt_msb: the upper 16 bits of the 32-bit frame counter (0 for a fresh session)."""
    phy = bytes(phy)
    if len(phy) < 1:
        raise LoRaWANFrameError("empty frame")
    if len(phy) > PHY_MAX:
        raise LoRaWANFrameError(f"a PHYPayload is at most {PHY_MAX} bytes, this one is {len(phy)}")
    mtype = MType(phy[0] >> 5)
    major = phy[0] & 0x03
    if mtype == MType.PROPRIETARY:
        return Proprietary(phy)
    if major != 0:
        raise LoRaWANFrameError(f"unknown LoRaWAN major version {major}")
    if mtype == MType.JOIN_REQUEST:
        if len(phy) != 23:
            raise LoRaWANFrameError(f"a join-request is 23 bytes, this one is {len(phy)}")
        _, join_eui, dev_eui, nonce, mic = _JOIN_REQUEST.unpack(phy)
        return JoinRequest(join_eui[::-1], dev_eui[::-1], nonce, mic)
    if mtype == MType.JOIN_ACCEPT:
        if len(phy) not in (17, 33):
            raise LoRaWANFrameError(f"a join-accept is 17 or 33 bytes, this one is {len(phy)}")
        return EncryptedJoinAccept(phy)
    if mtype == MType.REJOIN_REQUEST:
        raise LoRaWANFrameError("rejoin-requests are LoRaWAN 1.1: not supported")
    if len(phy) < 12:
        raise LoRaWANFrameError(f"a data frame is at least 12 bytes, this one is {len(phy)}")
    _, dev_addr, fctrl, fcnt16 = _FHDR.unpack_from(phy)
    nopts = fctrl & 0x0F
    body_end = len(phy) - 4
    if 8 + nopts > body_end:
        raise LoRaWANFrameError(f"FOptsLen {nopts} runs past the end of the frame")
    fopts = phy[8:8 + nopts]
    rest = phy[8 + nopts:body_end]
    fport = rest[0] if rest else None
    if fport == 0 and nopts:
        raise LoRaWANFrameError("MAC commands in both FOpts and FPort 0: the frame is invalid")
    return DataFrame(mtype=mtype, dev_addr=dev_addr, fcnt=(fcnt_msb & 0xFFFF) << 16 | fcnt16,
                     fctrl=fctrl & 0xF0, fopts=fopts, fport=fport, frm_payload=rest[1:], mic=phy[body_end:],
                     major=major)


def build_data_frame(*, mtype: MType | int, dev_addr: int, fcnt: int, nwk_skey, app_skey=None,
                     fport: int | None = None, payload: bytes = b"", fopts: bytes = b"", adr: bool = False,
                     ack: bool = False, adr_ack_req: bool = False, fpending: bool = False) -> bytes:
    """Encrypts and MICs a data frame (either direction) from plain parts; returns the PHYPayload."""
    mtype = MType(mtype)
    if not mtype.is_data:
        raise LoRaWANFrameError(f"{mtype.label} is not a data frame")
    if len(fopts) > 15:
        raise LoRaWANFrameError("FOpts holds at most 15 bytes")
    if fport is None and payload:
        raise LoRaWANFrameError("a payload needs an FPort")
    if fport == 0 and fopts:
        raise LoRaWANFrameError("MAC commands go in FOpts or on FPort 0, not both")
    if fport is not None and not 0 <= fport <= 255:
        raise LoRaWANFrameError("FPort is 0..255")
    if not 0 <= fcnt <= 0xFFFFFFFF:
        raise LoRaWANFrameError("FCnt is a 32-bit counter")
    fctrl = (0x80 if adr else 0) | (0x20 if ack else 0)
    up = mtype.is_uplink
    if adr_ack_req and up:
        fctrl |= 0x40
    if fpending and not up:
        fctrl |= 0x10
    f = DataFrame(mtype=mtype, dev_addr=_u32(dev_addr), fcnt=fcnt, fctrl=fctrl, fopts=bytes(fopts), fport=fport)
    if fport is not None and payload:
        key = as_key(nwk_skey, "NwkSKey") if fport == 0 else as_key(app_skey, "AppSKey")
        f.frm_payload = crypto.frm_crypt(key, f.dev_addr, fcnt, f.direction, bytes(payload))
    f.mic = f.expected_mic(nwk_skey)
    out = f.encode()
    if len(out) > PHY_MAX:
        raise LoRaWANFrameError(f"the frame would be {len(out)} bytes, over {PHY_MAX}")
    return out


def build_join_request(*, join_eui: bytes, dev_eui: bytes, dev_nonce: int, app_key) -> bytes:
    if len(join_eui) != 8 or len(dev_eui) != 8:
        raise LoRaWANFrameError("EUIs are 8 bytes")
    jr = JoinRequest(bytes(join_eui), bytes(dev_eui), dev_nonce)
    jr.mic = crypto.join_mic(as_key(app_key, "AppKey"), jr.mac_body())
    return jr.encode()


def build_join_accept(accept: JoinAccept, app_key) -> bytes:
    """The network server's side: MIC under AppKey, then AES *decrypt* of everything after MHDR."""
    key = as_key(app_key, "AppKey")
    body = accept.plain_body()
    plain = body + crypto.join_mic(key, body)
    return plain[:1] + crypto.aes_decrypt(key, plain[1:])


def decode_join_accept(phy: bytes, app_key) -> JoinAccept:
    """The device's side: AES *encrypt* recovers the join-accept; raises LoRaWANMicError on a bad MIC."""
    import hmac

    phy = bytes(phy)
    if len(phy) not in (17, 33) or phy[0] >> 5 != MType.JOIN_ACCEPT:
        raise LoRaWANFrameError("a join-accept is 17 or 33 bytes starting with MHDR 0x20")
    key = as_key(app_key, "AppKey")
    plain = phy[:1] + crypto.aes_encrypt(key, phy[1:])
    if not hmac.compare_digest(crypto.join_mic(key, plain[:-4]), plain[-4:]):
        raise LoRaWANMicError("join-accept MIC does not match under this AppKey")
    jn = int.from_bytes(plain[1:4], "little")
    net_id = int.from_bytes(plain[4:7], "little")
    dev_addr, dl, rx_delay = struct.unpack_from("<IBB", plain, 7)
    return JoinAccept(join_nonce=jn, net_id=net_id, dev_addr=dev_addr, rx1_dr_offset=(dl >> 4) & 7,
                      rx2_dr=dl & 15, rx_delay=rx_delay & 15, cflist=plain[13:29] if len(plain) == 33 else None,
                      mic=plain[-4:])
