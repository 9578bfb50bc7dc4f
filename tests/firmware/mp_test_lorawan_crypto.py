# LoRaWAN crypto and frame building against published vectors: RFC 4493 (AES-CMAC) and REFERENCE §2
# (from the lora-packet project's tests). Nothing here compares the code with its own output only.
# mp32: also on 32 bits at the smallest board's heap (tests/firmware/conftest.py)
# mp: -X heapsize=64K
from binascii import hexlify, unhexlify

import micropython

from bysans.lorawan import crypto, frames
from bysans.lorawan.errors import FrameError, KeyError_, MicError

NWK = unhexlify("44024241ed4ce9a68c6a8bc055233fd3")
APP = unhexlify("ec925802ae430ca77fd3dd73cb2cc588")
UPLINK = unhexlify("40F17DBE4900020001954378762B11FF0D")
APPKEY = unhexlify("98929b92c49edba9676d646d3b612456")
JOINREQ = unhexlify("0039363463336913AA05693574323831330489C65B1304")


def hx(b):
    return hexlify(b).decode()


def test_cmac_rfc4493_vectors():
    c = crypto.Cmac(unhexlify("2b7e151628aed2a6abf7158809cf4f3c"))
    msg = unhexlify("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411"
                    "e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
    assert hx(c.mac(b"")) == "bb1d6929e95937287fa37d129b756746"
    assert hx(c.mac(msg[:16])) == "070a16b46b4d4144f79bdd9dd04a287c"
    assert hx(c.mac(msg[:40])) == "dfa66747de9ae63030ca32611497c827"
    assert hx(c.mac(msg)) == "51f0bebf7e3b9d92fc49741779363cfe"


def test_uplink_vector_built_bit_for_bit():
    fr = frames.Framer(0x49BE7DF1, NWK, APP)
    n = fr.build_uplink(2, 1, b"test", False, 0, None)
    assert bytes(fr.tx_frame(n)) == UPLINK


def test_uplink_vector_mic_and_decrypt():
    b0 = bytearray(16)
    crypto.fill_b0(b0, 0x49BE7DF1, 2, False, len(UPLINK) - 4)
    assert crypto.Cmac(NWK).mac(bytes(b0) + UPLINK[:-4])[:4] == unhexlify("2b11ff0d")
    p = bytearray(UPLINK[9:13])
    crypto.FrameCipher(APP).crypt(p, 0, 4, 0x49BE7DF1, 2, False)
    assert p == b"test"


def test_join_request_vector():
    buf = bytearray(23)
    join_eui = unhexlify("AA13693363343639")  # label order: the frame carries it reversed
    dev_eui = unhexlify("3331383274356905")
    n = frames.build_join_request(buf, join_eui, dev_eui, 0x8904, crypto.Cmac(APPKEY))
    assert n == 23
    assert bytes(buf) == JOINREQ
    assert hx(buf[19:]) == "c65b1304"


def test_session_key_derivation_vector():
    # REFERENCE §2: NetID aabbcc, JoinNonce 376338, DevNonce f18e (as printed, i.e. most significant byte
    # first; the join-accept carries them little-endian), AppKey of the join-request vector
    nwk, app = crypto.derive_session_keys(APPKEY, unhexlify("386337"), unhexlify("ccbbaa"), 0xF18E)
    assert hx(nwk) == "4e3d6e6afbcc67af2ba3c8e8ec4acf4b"
    assert hx(app) == "610897aa6f1460623443b527d3ac6a9d"


def _ecb_decrypt(key, data):
    import cryptolib

    d = cryptolib.aes(key, 1)
    out = bytearray(data)
    for off in range(1, len(out), 16):
        out[off:off + 16] = d.decrypt(bytes(out[off:off + 16]))
    return bytes(out)


def test_join_accept_roundtrip_and_bad_mic():
    plain = bytearray(unhexlify("20" "386337" "ccbbaa" "f17dbe49" "00" "01"))
    plain += crypto.Cmac(APPKEY).mac(plain)[:4]
    wire = _ecb_decrypt(APPKEY, plain)  # what a network server sends
    assert wire != bytes(plain)
    assert crypto.decrypt_join_accept(APPKEY, wire) == plain
    bad = bytearray(wire)
    bad[5] ^= 1
    try:
        crypto.decrypt_join_accept(APPKEY, bad)
        assert False, "bad MIC accepted"
    except MicError:
        pass
    try:
        crypto.decrypt_join_accept(APPKEY, wire[:12])
        assert False
    except FrameError:
        pass


def test_frm_encryption_multi_block_is_self_inverse():
    data = bytes(range(40))
    p = bytearray(data)
    c = crypto.FrameCipher(APP)
    c.crypt(p, 0, 40, 0x01020304, 70000, True)
    assert p != data
    c.crypt(p, 0, 40, 0x01020304, 70000, True)
    assert p == data


def test_wrong_key_length_is_named_and_says_nothing_of_the_key():
    try:
        crypto.Cmac(b"secret-key-15by")
        assert False
    except KeyError_ as e:
        assert "secret" not in str(e)


def test_no_key_in_repr():
    fr = frames.Framer(0x49BE7DF1, NWK, APP)
    for obj in (fr, crypto.Cmac(NWK), crypto.FrameCipher(APP)):
        r = repr(obj)
        assert hx(NWK) not in r and hx(APP) not in r and "\\x" not in r


def test_uplink_build_does_not_allocate():
    fr = frames.Framer(0x49BE7DF1, NWK, APP)
    payload = bytes(24)
    fr.build_uplink(5, 2, payload, False, 0x80, None)
    micropython.heap_lock()
    try:
        n = fr.build_uplink(6, 2, payload, False, 0x80, None)
    finally:
        micropython.heap_unlock()
    assert n == 24 + 13
