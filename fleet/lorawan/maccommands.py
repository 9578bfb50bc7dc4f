"""MAC commands of LoRaWAN 1.0.4 (§5) as readable dicts, for decoding frames on the host."""

from __future__ import annotations

# CID -> (name, payload length) per direction
UPLINK = {
    0x02: ("LinkCheckReq", 0), 0x03: ("LinkADRAns", 1), 0x04: ("DutyCycleAns", 0),
    0x05: ("RXParamSetupAns", 1), 0x06: ("DevStatusAns", 2), 0x07: ("NewChannelAns", 1),
    0x08: ("RXTimingSetupAns", 0), 0x09: ("TxParamSetupAns", 0), 0x0A: ("DlChannelAns", 1),
    0x0D: ("DeviceTimeReq", 0),
}
DOWNLINK = {
    0x02: ("LinkCheckAns", 2), 0x03: ("LinkADRReq", 4), 0x04: ("DutyCycleReq", 1),
    0x05: ("RXParamSetupReq", 4), 0x06: ("DevStatusReq", 0), 0x07: ("NewChannelReq", 5),
    0x08: ("RXTimingSetupReq", 1), 0x09: ("TxParamSetupReq", 1), 0x0A: ("DlChannelReq", 4),
    0x0D: ("DeviceTimeAns", 5),
}


def _freq(b: bytes) -> int:
    return int.from_bytes(b, "little") * 100


def _fields(name: str, p: bytes) -> dict:
    if name == "LinkCheckAns":
        return {"margin_db": p[0], "gateways": p[1]}
    if name == "LinkADRReq":
        return {"data_rate": p[0] >> 4, "tx_power": p[0] & 15, "ch_mask": int.from_bytes(p[1:3], "little"),
                "ch_mask_cntl": (p[3] >> 4) & 7, "nb_trans": p[3] & 15}
    if name in ("LinkADRAns",):
        return {"power_ack": bool(p[0] & 4), "data_rate_ack": bool(p[0] & 2), "channel_mask_ack": bool(p[0] & 1)}
    if name == "DutyCycleReq":
        return {"max_dcycle": p[0] & 15}
    if name == "RXParamSetupReq":
        return {"rx1_dr_offset": (p[0] >> 4) & 7, "rx2_data_rate": p[0] & 15, "frequency_hz": _freq(p[1:4])}
    if name == "RXParamSetupAns":
        return {"rx1_dr_offset_ack": bool(p[0] & 4), "rx2_data_rate_ack": bool(p[0] & 2),
                "channel_ack": bool(p[0] & 1)}
    if name == "DevStatusAns":
        margin = p[1] & 0x3F
        return {"battery": p[0], "margin_db": margin - 64 if margin & 0x20 else margin}
    if name == "NewChannelReq":
        return {"ch_index": p[0], "frequency_hz": _freq(p[1:4]), "max_dr": p[4] >> 4, "min_dr": p[4] & 15}
    if name == "NewChannelAns":
        return {"data_rate_range_ok": bool(p[0] & 2), "channel_frequency_ok": bool(p[0] & 1)}
    if name == "RXTimingSetupReq":
        return {"delay_s": (p[0] & 15) or 1}
    if name == "DlChannelReq":
        return {"ch_index": p[0], "frequency_hz": _freq(p[1:4])}
    if name == "DlChannelAns":
        return {"uplink_frequency_exists": bool(p[0] & 2), "channel_frequency_ok": bool(p[0] & 1)}
    if name == "DeviceTimeAns":
        return {"gps_seconds": int.from_bytes(p[0:4], "little"), "fraction_256": p[4]}
    if name == "TxParamSetupReq":
        return {"raw": p.hex()}
    return {}


def decode(data: bytes, *, uplink: bool) -> list[dict]:
    """Each command as {"cid", "name", ...fields}; an unknown CID ends the list with {"cid", "unknown":
    true, "rest_hex"} (its length is unknown, so nothing after it can be read)."""
    table = UPLINK if uplink else DOWNLINK
    out = []
    i = 0
    while i < len(data):
        cid = data[i]
        known = table.get(cid)
        if known is None:
            out.append({"cid": cid, "name": None, "unknown": True, "rest_hex": data[i + 1:].hex()})
            break
        name, size = known
        p = data[i + 1:i + 1 + size]
        if len(p) < size:
            out.append({"cid": cid, "name": name, "truncated": True})
            break
        out.append({"cid": cid, "name": name, **_fields(name, p)})
        i += 1 + size
    return out
