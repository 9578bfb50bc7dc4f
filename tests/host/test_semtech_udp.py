"""The Semtech packet-forwarder protocol (v2) is declared once, in fleet/lorawan/semtech_udp.py: its
datagrams byte for byte as PROTOCOL.TXT draws them, and neither end declares the constants again."""

import ast
from pathlib import Path

import pytest

from fleet.lorawan import semtech_udp as U

ROOT = Path(__file__).resolve().parents[2]
EUI = bytes.fromhex("aa555a0000000101")


def test_datagrams_as_the_protocol_draws_them():
    # PROTOCOL.TXT section 3-5: version 2, random token, identifier, then the gateway EUI from the gateway
    assert U.datagram(U.PUSH_DATA, b"\x12\x34", eui=EUI, body=b'{"rxpk":[]}') == \
        b"\x02\x12\x34\x00" + EUI + b'{"rxpk":[]}'
    assert U.datagram(U.PUSH_ACK, b"\x12\x34") == b"\x02\x12\x34\x01"
    assert U.datagram(U.PULL_DATA, b"\xab\xcd", eui=EUI) == b"\x02\xab\xcd\x02" + EUI
    assert U.datagram(U.PULL_RESP, b"\x00\x07", body=b"{}") == b"\x02\x00\x07\x03{}"
    assert U.datagram(U.PULL_ACK, b"\xab\xcd") == b"\x02\xab\xcd\x04"
    assert U.datagram(U.TX_ACK, b"\x00\x07", eui=EUI) == b"\x02\x00\x07\x05" + EUI


def test_parse_reads_what_datagram_writes_and_ignores_other_versions():
    for ident in (U.PUSH_DATA, U.PULL_DATA, U.TX_ACK):
        d = U.parse(U.datagram(ident, b"\x01\x02", eui=EUI, body=b'{"a":1}'))
        assert d == U.Datagram(ident, b"\x01\x02", EUI, b'{"a":1}')
    for ident in (U.PUSH_ACK, U.PULL_RESP, U.PULL_ACK):
        assert U.parse(U.datagram(ident, b"\x01\x02", body=b"x")) == U.Datagram(ident, b"\x01\x02", b"", b"x")
    assert U.parse(b"\x01\x12\x34\x00" + EUI) is None  # protocol v1
    assert U.parse(b"\x02\x12\x34") is None            # too short


def test_a_datagram_with_the_wrong_eui_or_token_is_refused():
    with pytest.raises(ValueError):
        U.datagram(U.PUSH_DATA, b"\x12\x34")           # from the gateway: needs its EUI
    with pytest.raises(ValueError):
        U.datagram(U.PULL_RESP, b"\x12\x34", eui=EUI)  # from the server: none
    with pytest.raises(ValueError):
        U.datagram(U.PULL_ACK, b"\x12")


def test_datr_both_ways():
    assert U.datr(7, 125) == "SF7BW125"
    assert U.parse_datr("sf12bw125") == (12, 125)
    with pytest.raises(ValueError):
        U.parse_datr("50000")  # an FSK rate


@pytest.mark.parametrize("path", ["fleet/sim/devices/air.py", "lab/netserver.py"])
def test_neither_end_declares_the_protocol_again(path):
    names = {"PROTOCOL_VERSION", "PUSH_DATA", "PUSH_ACK", "PULL_DATA", "PULL_RESP", "PULL_ACK", "TX_ACK"}
    tree = ast.parse((ROOT / path).read_text())
    assigned = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign) for t in ast.walk(node)
                if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)}
    assert not names & assigned
    imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module and node.module.endswith("semtech_udp") for a in node.names}
    assert imported, f"{path} does not use fleet.lorawan.semtech_udp"
