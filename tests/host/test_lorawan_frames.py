"""fleet.lorawan against REFERENCE §2's public vectors and an independent re-implementation of the spec
written here with cryptography's AES and CMAC primitives."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lorawan_reference import aes_cmac as _cmac, ecb as _ecb, frm_crypt as ref_crypt
from fleet.errors import FleetError, LoRaWANFrameError, LoRaWANKeyError, LoRaWANMicError
from fleet.lorawan import (JoinAccept, Key, MType, build_data_frame, build_join_accept, build_join_request,
                           decode, decode_join_accept, derive_session_keys, describe)

NWK = bytes.fromhex("44024241ed4ce9a68c6a8bc055233fd3")
APP = bytes.fromhex("ec925802ae430ca77fd3dd73cb2cc588")
UPLINK = bytes.fromhex("40F17DBE4900020001954378762B11FF0D")
APPKEY = bytes.fromhex("98929b92c49edba9676d646d3b612456")
JOINREQ = bytes.fromhex("0039363463336913AA05693574323831330489C65B1304")


# --- an independent reading of the spec (LoRaWAN 1.0.x §4.3.3, §4.4, §6.2) -------------------------------
def ref_mic(key, addr, fcnt, direction, msg):
    b0 = bytes([0x49, 0, 0, 0, 0, direction]) + addr.to_bytes(4, "little") + fcnt.to_bytes(4, "little") \
        + bytes([0, len(msg)])
    return _cmac(key, b0 + msg)[:4]


# --- vectors ---------------------------------------------------------------------------------------------
def test_uplink_vector_decodes():
    f = decode(UPLINK)
    assert f.mtype == MType.UNCONFIRMED_UP
    assert (f.dev_addr, f.fcnt, f.fport, f.mic.hex()) == (0x49BE7DF1, 2, 1, "2b11ff0d")
    assert f.check_mic(NWK)
    assert f.decrypt(app_skey=APP) == b"test"
    assert not f.check_mic(APP)


def test_uplink_vector_encodes_bit_for_bit():
    assert build_data_frame(mtype=MType.UNCONFIRMED_UP, dev_addr=0x49BE7DF1, fcnt=2, fport=1, payload=b"test",
                            nwk_skey=NWK, app_skey=APP) == UPLINK


def test_join_request_vector():
    jr = decode(JOINREQ)
    assert jr.check_mic(APPKEY) and jr.mic.hex() == "c65b1304"
    assert jr.join_eui.hex() == "aa13693363343639" and jr.dev_eui.hex() == "3331383274356905"
    assert build_join_request(join_eui=jr.join_eui, dev_eui=jr.dev_eui, dev_nonce=jr.dev_nonce,
                              app_key=APPKEY) == JOINREQ


def test_session_key_vector():
    # REFERENCE §2 prints NetID, JoinNonce and DevNonce most significant byte first; on air they are LE
    nwk, app = derive_session_keys(APPKEY, bytes.fromhex("386337"), bytes.fromhex("ccbbaa"), 0xF18E)
    assert bytes(nwk).hex() == "4e3d6e6afbcc67af2ba3c8e8ec4acf4b"
    assert bytes(app).hex() == "610897aa6f1460623443b527d3ac6a9d"
    ja = JoinAccept(join_nonce=0x376338, net_id=0xAABBCC, dev_addr=1)
    assert ja.session_keys(APPKEY, 0xF18E) == (nwk, app)


# --- against the independent implementation --------------------------------------------------------------
keys = st.binary(min_size=16, max_size=16)


@settings(max_examples=200, deadline=None)
@given(nwk=keys, app=keys, addr=st.integers(0, 2**32 - 1), fcnt=st.integers(0, 2**32 - 1),
       port=st.integers(1, 223), payload=st.binary(max_size=222), down=st.booleans(), confirmed=st.booleans(),
       fopts=st.binary(max_size=15))
def test_data_frames_match_the_spec(nwk, app, addr, fcnt, port, payload, down, confirmed, fopts):
    mtype = (MType.CONFIRMED_DOWN if confirmed else MType.UNCONFIRMED_DOWN) if down else \
        (MType.CONFIRMED_UP if confirmed else MType.UNCONFIRMED_UP)
    phy = build_data_frame(mtype=mtype, dev_addr=addr, fcnt=fcnt, fport=port, payload=payload, fopts=fopts,
                           nwk_skey=nwk, app_skey=app)
    d = 1 if down else 0
    msg = bytes([mtype << 5]) + struct.pack("<IBH", addr, len(fopts), fcnt & 0xFFFF) + fopts + bytes([port]) \
        + ref_crypt(app, addr, fcnt, d, payload)
    assert phy == msg + ref_mic(nwk, addr, fcnt, d, msg)
    f = decode(phy, fcnt_msb=fcnt >> 16)
    assert f.check_mic(nwk) and f.decrypt(app_skey=app) == payload and f.fopts == fopts


@settings(max_examples=100, deadline=None)
@given(app_key=keys, join_nonce=st.integers(0, 2**24 - 1), net_id=st.integers(0, 2**24 - 1),
       addr=st.integers(0, 2**32 - 1), cflist=st.none() | st.binary(min_size=16, max_size=16),
       off=st.integers(0, 7), rx2=st.integers(0, 15), delay=st.integers(0, 15), dev_nonce=st.integers(0, 65535))
def test_join_accept_matches_the_spec(app_key, join_nonce, net_id, addr, cflist, off, rx2, delay, dev_nonce):
    ja = JoinAccept(join_nonce=join_nonce, net_id=net_id, dev_addr=addr, rx1_dr_offset=off, rx2_dr=rx2,
                    rx_delay=delay, cflist=cflist)
    wire = build_join_accept(ja, app_key)
    plain = bytes([0x20]) + join_nonce.to_bytes(3, "little") + net_id.to_bytes(3, "little") \
        + addr.to_bytes(4, "little") + bytes([off << 4 | rx2, delay]) + (cflist or b"")
    plain += _cmac(app_key, plain)[:4]
    # the server encrypts with AES decrypt, so the device's AES encrypt recovers it
    assert _ecb(app_key, wire[1:]) == plain[1:] and wire[0] == 0x20
    back = decode_join_accept(wire, app_key)
    assert (back.join_nonce, back.net_id, back.dev_addr, back.cflist) == (join_nonce, net_id, addr, cflist)
    nwk, app = back.session_keys(app_key, dev_nonce)
    tail = join_nonce.to_bytes(3, "little") + net_id.to_bytes(3, "little") + dev_nonce.to_bytes(2, "little")
    assert bytes(nwk) == _ecb(app_key, b"\x01" + tail + bytes(7))
    assert bytes(app) == _ecb(app_key, b"\x02" + tail + bytes(7))


def test_join_accept_wrong_key_is_a_mic_error():
    wire = build_join_accept(JoinAccept(join_nonce=1, net_id=0x13, dev_addr=5), APPKEY)
    with pytest.raises(LoRaWANMicError) as e:
        decode_join_accept(wire, NWK)
    assert NWK.hex() not in str(e.value) and APPKEY.hex() not in str(e.value)


def test_downlink_with_mac_commands_on_port_0():
    phy = build_data_frame(mtype=MType.UNCONFIRMED_DOWN, dev_addr=0x26011BDA, fcnt=3, fport=0,
                           payload=bytes([0x06, 0x03, 0x52, 0x07, 0x00, 0x01]), nwk_skey=NWK, app_skey=APP)
    info = describe(phy, nwk_skey=NWK, app_skey=APP)
    assert info["mic_ok"] and info["fport"] == 0
    assert [c["name"] for c in info["mac_commands"]] == ["DevStatusReq", "LinkADRReq"]
    assert info["mac_commands"][1]["data_rate"] == 5 and info["mac_commands"][1]["ch_mask"] == 7


def test_unknown_mac_command_reported_not_raised():
    phy = build_data_frame(mtype=MType.UNCONFIRMED_DOWN, dev_addr=1, fcnt=3, fopts=b"\x06\x7f\x01",
                           nwk_skey=NWK)
    cmds = describe(phy, nwk_skey=NWK)["mac_commands"]
    assert cmds[0]["name"] == "DevStatusReq" and cmds[1]["unknown"] and cmds[1]["rest_hex"] == "01"


@pytest.mark.parametrize("hexframe", ["", "40F17D", "40F17DBE49000200", "4FF17DBE4900020001954378762B11FF0D",
                                      "00" * 22, "20" * 20, "41F17DBE4900020001954378762B11FF0D",
                                      "40F17DBE490F020001954378762B11FF0D", "40" + "00" * 300])
def test_bad_frames_raise_named_errors(hexframe):
    with pytest.raises(LoRaWANFrameError):
        decode(bytes.fromhex(hexframe))


@given(st.binary(max_size=300))
def test_decode_never_crashes_on_junk(data):
    try:
        f = decode(data)
    except LoRaWANFrameError:
        return
    describe(data, nwk_skey=NWK, app_skey=APP, app_key=APPKEY)
    assert f is not None


def test_keys_never_print_themselves():
    k = Key(APPKEY, "AppKey")
    for text in (repr(k), str(k), f"{k}", "%s" % k):
        assert APPKEY.hex() not in text
    with pytest.raises(LoRaWANKeyError) as e:
        Key("98929b92c49edba9676d646d3b6124", "AppKey")
    assert "98929b92" not in str(e.value) and isinstance(e.value, FleetError)
    with pytest.raises(LoRaWANKeyError) as e:
        Key("zz929b92c49edba9676d646d3b612456", "AppKey")
    assert "929b92" not in str(e.value)
    assert bytes(k) == APPKEY
