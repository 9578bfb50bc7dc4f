"""The network status in an uplink (payload_spec NET_FLAG, docs/formats/payload.md "Network status"): a node
whose WiFi join failed says so in its next uplinks; a frame without it is unchanged; Python and the
generated JavaScript decoders agree."""

import pytest

from fleet.codec import decode
from fleet.errors import PayloadDecodeError
from test_codec import S, _encode, _js_python_agree, fw, node_js  # noqa: F401 (fixtures)

ROWS = [[800 + i, 2000 + 10 * i, 1500, 3700, 0] for i in range(3)]


def _frame(fw, net, rows=ROWS):
    batch = fw.ReadingBatch(S.KIND_WASTE)
    for r in rows:
        batch.add(r, 0)
    buf = bytearray(64)
    n = fw.encode(buf, batch, interval_min=15, age_min=2, frame_values=(40,), net=net)
    return bytes(buf[:n])


def test_the_status_is_one_byte_after_the_header_and_the_rest_is_unchanged(fw, node_js):
    plain = _frame(fw, 0)
    assert plain == _encode(fw, S.KIND_WASTE, ROWS, [0] * 3, 15, 2, (40,))  # the default: no status byte
    code = S.NET_STATUS_NAMES.index("WRONG_PASSWORD")
    flagged = _frame(fw, code)
    # the layout read off the spec, not through the decoder: byte 1's top bit, then the code, then the
    # frame as it was
    assert flagged[:2] == bytes([plain[0], plain[1] | 0x80]) and flagged[2] == 3 and flagged[3:] == plain[2:]
    with_status, without = decode(flagged), decode(plain)
    assert with_status.pop("net_status") == "WRONG_PASSWORD"
    assert with_status == without and "net_status" not in without
    _js_python_agree(node_js, flagged)
    _js_python_agree(node_js, plain)


def test_every_status_code_roundtrips_also_in_an_empty_frame(fw, node_js):
    for code, name in enumerate(S.NET_STATUS_NAMES):
        if not code:
            continue
        empty = _frame(fw, code, rows=[])
        assert empty == bytes([S.VERSION, 0x80 | S.KIND_WASTE << 5, code])
        out = _js_python_agree(node_js, empty)["data"]
        assert (out["net_status"], out["readings"]) == (name, [])


@pytest.mark.parametrize("frame,offset,words", [
    (bytes([S.VERSION, 0xA0]), 2, "ends inside the network status"),
    (bytes([S.VERSION, 0xA0, 0]), 2, "unknown network status 0"),
    (bytes([S.VERSION, 0xA0, 0x12]), 2, "unknown network status 18"),
    (bytes([S.VERSION, 0xA0, len(S.NET_STATUS_NAMES)]), 2, "unknown network status"),
    (bytes([S.VERSION, 0xA0, 2, 0]), 3, "after an empty frame"),
])
def test_a_bad_status_byte_names_its_offset(frame, offset, words, node_js):
    with pytest.raises(PayloadDecodeError) as e:
        decode(frame)
    assert e.value.offset == offset and words in e.value.message
    _js_python_agree(node_js, frame)


def test_the_encoder_refuses_a_code_that_does_not_fit(fw):
    with pytest.raises(fw.PayloadError):
        _frame(fw, 16)
