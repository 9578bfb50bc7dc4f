"""A decoded frame as a plain dict (what `fleet lorawan decode --json` prints). Never contains a key."""

from __future__ import annotations

from ..errors import LoRaWANMicError
from . import maccommands
from .crypto import as_key
from .phy import DataFrame, EncryptedJoinAccept, JoinRequest, Proprietary, decode, decode_join_accept


def parse_hex(text: str) -> bytes:
    from ..errors import LoRaWANFrameError

    t = text.strip().replace(" ", "").replace(":", "")
    if t.lower().startswith("0x"):
        t = t[2:]
    try:
        return bytes.fromhex(t)
    except ValueError:
        raise LoRaWANFrameError("the frame is not hexadecimal (spaces and colons are allowed)") from None


def describe(phy: bytes, *, nwk_skey=None, app_skey=None, app_key=None, fcnt_msb: int = 0) -> dict:
    nwk = as_key(nwk_skey, "NwkSKey") if nwk_skey is not None else None
    app = as_key(app_skey, "AppSKey") if app_skey is not None else None
    appk = as_key(app_key, "AppKey") if app_key is not None else None
    f = decode(phy, fcnt_msb=fcnt_msb)
    out: dict = {"mtype": f.mtype.label, "size": len(phy)}
    if isinstance(f, DataFrame):
        up = f.mtype.is_uplink
        out.update({
            "direction": "up" if up else "down",
            "dev_addr": f"{f.dev_addr:08x}",
            "fcnt": f.fcnt,
            "fport": f.fport,
            "adr": f.adr,
            "ack": f.ack,
            "fopts_hex": f.fopts.hex(),
            "mic": f.mic.hex(),
            "mic_ok": f.check_mic(nwk) if nwk is not None else None,
            "payload_encrypted_hex": f.frm_payload.hex(),
            "payload_hex": None,
        })
        if up:
            out["adr_ack_req"] = f.adr_ack_req
            out["class_b"] = f.class_b
        else:
            out["fpending"] = f.fpending
        mac = b""
        if f.fopts:
            mac = f.fopts
        if f.fport == 0 and nwk is not None:
            out["payload_hex"] = f.decrypt(nwk_skey=nwk).hex()
            mac = bytes.fromhex(out["payload_hex"])
        elif f.fport and app is not None:
            out["payload_hex"] = f.decrypt(app_skey=app).hex()
        elif f.fport is None:
            out["payload_hex"] = ""
        out["mac_commands"] = maccommands.decode(mac, uplink=up) if mac else []
    elif isinstance(f, JoinRequest):
        out.update({
            "direction": "up",
            "join_eui": f.join_eui.hex(),
            "dev_eui": f.dev_eui.hex(),
            "dev_nonce": f.dev_nonce,
            "mic": f.mic.hex(),
            "mic_ok": f.check_mic(appk) if appk is not None else None,
        })
    elif isinstance(f, EncryptedJoinAccept):
        out.update({"direction": "down", "mic_ok": None})
        if appk is not None:
            try:
                ja = decode_join_accept(f.raw, appk)
            except LoRaWANMicError:
                out["mic_ok"] = False
            else:
                out.update({
                    "mic_ok": True,
                    "join_nonce": f"{ja.join_nonce:06x}",
                    "net_id": f"{ja.net_id:06x}",
                    "dev_addr": f"{ja.dev_addr:08x}",
                    "rx1_dr_offset": ja.rx1_dr_offset,
                    "rx2_dr": ja.rx2_dr,
                    "rx_delay_s": ja.rx_delay or 1,
                    "cflist_hex": ja.cflist.hex() if ja.cflist is not None else None,
                })
    elif isinstance(f, Proprietary):
        out.update({"raw_hex": f.raw.hex()})
    return out
