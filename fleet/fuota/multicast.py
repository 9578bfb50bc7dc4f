"""TS005 Remote Multicast Setup v1.0.0 (FPort 200), the network server's side: the multicast key
derivation for LoRaWAN 1.0.x devices, the requests (group setup, status, delete, class C session), the
answers read back, and multicast data frames. Layouts: firmware/bysans/fuota/setup_spec.py (through
fleet.firmware_data); docs/formats/fuota.md, "Multicast setup". AES is `cryptography`'s.

    kek = mc_ke_key(mc_root_key(gen_app_key))            # per device (GenAppKey: its AppKey here)
    req = group_setup_req(0, mc_addr, encrypt_mc_key(kek, mc_key), 0, 0xFFFF)
    app_s, nwk_s = mc_session_keys(mc_key, mc_addr)      # the group's; multicast_frame() uses them
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import LoRaWANFrameError, UsageError
from ..firmware_data import load
from ..lorawan.crypto import Key, aes_decrypt, aes_encrypt, as_key
from ..lorawan.phy import MType, build_data_frame

SPEC = load("bysans/fuota/setup_spec.py")
PORT = SPEC.MCAST_PORT
EU868_MHZ = (863_000_000, 870_000_000)

_UP_NAMES = {SPEC.PACKAGE_VERSION: "PackageVersionAns", SPEC.MC_STATUS: "McGroupStatusAns",
             SPEC.MC_SETUP: "McGroupSetupAns", SPEC.MC_DELETE: "McGroupDeleteAns",
             SPEC.MC_CLASS_C: "McClassCSessionAns"}


# ---- keys -------------------------------------------------------------------------------------------
def _pad(prefix: int, rest: bytes = b"") -> bytes:
    return (bytes([prefix]) + rest).ljust(16, b"\0")


def mc_root_key(gen_app_key, lorawan_11: bool = False) -> Key:
    """McRootKey: AES(GenAppKey, 0x00 | pad16) for LoRaWAN 1.0.x; AES(AppKey, 0x20 | pad16) for 1.1."""
    key = as_key(gen_app_key, "AppKey" if lorawan_11 else "GenAppKey")
    prefix = SPEC.ROOT_KEY_PREFIX_11 if lorawan_11 else SPEC.ROOT_KEY_PREFIX_10X
    return Key(aes_encrypt(key, _pad(prefix)), "McRootKey")


def mc_ke_key(root_key) -> Key:
    return Key(aes_encrypt(as_key(root_key, "McRootKey"), _pad(SPEC.KE_KEY_PREFIX)), "McKEKey")


def encrypt_mc_key(ke_key, mc_key) -> bytes:
    """McKey_encrypted = aes128_decrypt(McKEKey, McKey): the device recovers McKey with AES encrypt."""
    return aes_decrypt(as_key(ke_key, "McKEKey"), bytes(as_key(mc_key, "McKey")))


def mc_session_keys(mc_key, mc_addr: int) -> tuple[Key, Key]:
    """(McAppSKey, McNwkSKey) of a group."""
    k = as_key(mc_key, "McKey")
    addr = struct.pack("<I", _addr(mc_addr))
    return (Key(aes_encrypt(k, _pad(SPEC.MC_APP_S_PREFIX, addr)), "McAppSKey"),
            Key(aes_encrypt(k, _pad(SPEC.MC_NWK_S_PREFIX, addr)), "McNwkSKey"))


def _addr(mc_addr: int) -> int:
    if not 0 <= int(mc_addr) <= 0xFFFFFFFF:
        raise UsageError(f"McAddr is a 32-bit address, got {mc_addr}")
    return int(mc_addr)


def _gid(gid: int) -> int:
    if not 0 <= gid < SPEC.MC_GROUPS:
        raise UsageError(f"McGroupID is 0..{SPEC.MC_GROUPS - 1}, got {gid}")
    return gid


# ---- requests (downlinks on FPort 200) ----------------------------------------------------------------
def group_status_req(mask: int = 0x0F) -> bytes:
    if not 0 <= mask <= 0x0F:
        raise UsageError(f"ReqGroupMask is 4 bits, got {mask:#x}")
    return bytes([SPEC.MC_STATUS, mask])


def group_setup_req(gid: int, mc_addr: int, mc_key_encrypted: bytes, min_fcnt: int = 0,
                    max_fcnt: int = 0xFFFFFFFF) -> bytes:
    if len(mc_key_encrypted) != 16:
        raise UsageError("McKey_encrypted is 16 bytes")
    if not 0 <= min_fcnt <= max_fcnt <= 0xFFFFFFFF:
        raise UsageError(f"the frame-counter range {min_fcnt}..{max_fcnt} is not 0 <= min <= max < 2^32")
    return (bytes([SPEC.MC_SETUP, _gid(gid)]) + struct.pack("<I", _addr(mc_addr)) + bytes(mc_key_encrypted)
            + struct.pack("<II", min_fcnt, max_fcnt))


def group_delete_req(gid: int) -> bytes:
    return bytes([SPEC.MC_DELETE, _gid(gid)])


def class_c_session_req(gid: int, session_time: int, timeout: int, freq_hz: int, dr: int) -> bytes:
    """McClassCSessionReq: the session starts at GPS second `session_time` and lasts 2^timeout s."""
    if not 0 <= timeout <= SPEC.TIMEOUT_MASK:
        raise UsageError(f"SessionTimeOut is 0..15 (the session lasts 2^TimeOut s), got {timeout}")
    if freq_hz % SPEC.FREQ_STEP_HZ or not EU868_MHZ[0] <= freq_hz <= EU868_MHZ[1]:
        raise UsageError(f"DLFrequency {freq_hz} Hz is not an EU868 frequency on the 100 Hz grid")
    if not 0 <= dr <= 15:
        raise UsageError(f"DR is 0..15, got {dr}")
    if not 0 <= session_time <= 0xFFFFFFFF:
        raise UsageError("SessionTime is a 32-bit GPS time")
    f = freq_hz // SPEC.FREQ_STEP_HZ
    return (bytes([SPEC.MC_CLASS_C, _gid(gid)]) + struct.pack("<IB", session_time, timeout)
            + f.to_bytes(3, "little") + bytes([dr]))


def package_version_req() -> bytes:
    return bytes([SPEC.PACKAGE_VERSION])


# ---- answers (uplinks on FPort 200) -------------------------------------------------------------------
def parse_uplink(payload: bytes) -> list[dict]:
    """The answers of an uplink on FPort 200. Raises LoRaWANFrameError for an unknown or cut-short one."""
    out, i, p = [], 0, bytes(payload)
    while i < len(p):
        cid = p[i]
        if cid not in SPEC.MCAST_UP_LEN:
            raise LoRaWANFrameError(f"multicast setup: unknown uplink command 0x{cid:02x} at byte {i}")
        name = _UP_NAMES[cid]
        size = SPEC.MCAST_UP_LEN[cid]
        if i + 1 + size > len(p):
            raise LoRaWANFrameError(f"multicast setup: {name} cut short")
        b = p[i + 1]
        cmd = {"name": name, "cid": cid}
        if cid == SPEC.PACKAGE_VERSION:
            cmd.update(package=b, version=p[i + 2])
        elif cid == SPEC.MC_STATUS:
            mask = b & 0x0F
            n = bin(mask).count("1")
            size += 5 * n
            if i + 1 + size > len(p):
                raise LoRaWANFrameError(f"multicast setup: {name} lists {n} groups but is cut short")
            groups = {}
            for k in range(n):
                o = i + 2 + 5 * k
                groups[p[o]] = struct.unpack_from("<I", p, o + 1)[0]
            cmd.update(total=(b >> 4) & 0x07, mask=mask, groups=groups)
        elif cid == SPEC.MC_SETUP:
            cmd.update(gid=b & SPEC.GROUP_MASK, id_error=bool(b & SPEC.ID_ERROR))
        elif cid == SPEC.MC_DELETE:
            cmd.update(gid=b & SPEC.GROUP_MASK, undefined=bool(b & SPEC.UNDEFINED))
        else:
            errors = [n for bit, n in ((SPEC.CC_UNDEFINED, "group_undefined"), (SPEC.CC_FREQ_ERROR, "freq_error"),
                                       (SPEC.CC_DR_ERROR, "dr_error")) if b & bit]
            cmd.update(gid=b & SPEC.GROUP_MASK, errors=errors)
            if not errors:
                size += 3
                if i + 1 + size > len(p):
                    raise LoRaWANFrameError(f"multicast setup: {name} without its TimeToStart")
                cmd["time_to_start"] = int.from_bytes(p[i + 2:i + 5], "little")
        out.append(cmd)
        i += 1 + size
    return out


# ---- a group and its frames ---------------------------------------------------------------------------
@dataclass
class Group:
    """A multicast group as the network server keeps it."""

    gid: int
    mc_addr: int
    mc_key: Key
    fcnt: int = 0             # the next counter to send
    max_fcnt: int = 0xFFFFFFFF

    def __post_init__(self):
        _gid(self.gid)
        _addr(self.mc_addr)
        self.mc_key = as_key(self.mc_key, "McKey")

    def __repr__(self):
        return f"<Group {self.gid} {self.mc_addr:08x} fcnt {self.fcnt}>"

    def setup_req(self, gen_app_key) -> bytes:
        """The McGroupSetupReq for one device (McKey encrypted under that device's McKEKey)."""
        kek = mc_ke_key(mc_root_key(gen_app_key))
        return group_setup_req(self.gid, self.mc_addr, encrypt_mc_key(kek, self.mc_key), self.fcnt, self.max_fcnt)

    def frame(self, fport: int, payload: bytes) -> bytes:
        """The next multicast data frame (unconfirmed downlink, no FOpts) on this group's counter."""
        if not 1 <= fport <= 223:
            raise UsageError(f"a multicast frame's FPort is 1..223, got {fport}")
        if self.fcnt > self.max_fcnt:
            raise UsageError("the group's frame counter has reached its maxMcFCount: set the group up again")
        app_s, nwk_s = mc_session_keys(self.mc_key, self.mc_addr)
        phy = build_data_frame(mtype=MType.UNCONFIRMED_DOWN, dev_addr=self.mc_addr, fcnt=self.fcnt, nwk_skey=nwk_s,
                               app_skey=app_s, fport=fport, payload=payload)
        self.fcnt += 1
        return phy
