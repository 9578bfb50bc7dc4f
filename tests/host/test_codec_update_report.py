"""The update report (docs/formats/update-report.md): the firmware's encoder (bysans.update_report, on the
MicroPython unix port), the host decoder and the generated JavaScript decoders (in node, dispatching on the
FPort) agree with reports laid out by hand from the format's text, with the worked example in the docs, and on
malformed reports."""

import json
import re
import struct

import pytest

from fleet.cli import main as fleet_main
from fleet.codec.update_report import decode_report, report_tables
from fleet.errors import PayloadDecodeError
from fleet.resources import project_root
from release_support import run_mp
from test_codec_diag import _agree, node_js  # noqa: F401 (fixture)

FPORT = 222


def by_hand(event, reason, counter):
    """The layout as docs/formats/update-report.md states it: 7 bytes, big-endian, version 1 first."""
    return struct.pack(">BBBI", 1, event, reason, counter)


CASES = [
    (by_hand(2, 0, 7), {"update_report": 1, "event": "confirmed", "reason": None, "counter": 7}),
    (by_hand(1, 0, 0xFFFFFFFF), {"update_report": 1, "event": "installed", "reason": None, "counter": 4294967295}),
    (by_hand(3, 1, 0x01020304), {"update_report": 1, "event": "rolled_back", "reason": "BOOT_FAILED",
                                 "counter": 16909060}),
    (by_hand(4, 11, 300), {"update_report": 1, "event": "refused", "reason": "BAD_HASH", "counter": 300}),
    (by_hand(4, 1, 0), {"update_report": 1, "event": "refused", "reason": "MALFORMED", "counter": None}),
    (by_hand(4, 99, 5), {"update_report": 1, "event": "refused", "reason": "unknown", "counter": 5}),
    (by_hand(2, 9, 5), {"update_report": 1, "event": "confirmed", "reason": None, "counter": 5}),
]


@pytest.mark.parametrize("frame,expected", CASES)
def test_reports_laid_out_by_hand_decode_alike_on_host_and_in_javascript(frame, expected, node_js):  # noqa: F811
    assert decode_report(frame) == expected
    assert _agree(node_js, frame, FPORT, decode_report)["data"] == expected


@pytest.mark.parametrize("frame,offset,words", [
    (b"", 0, "empty"),
    (b"\x02" + bytes(6), 0, "unknown update report version 2"),
    (by_hand(2, 0, 7)[:5], 5, "has 7 bytes, got 5"),
    (by_hand(2, 0, 7) + b"\x00", 7, "has 7 bytes, got 8"),
    (by_hand(0, 0, 7), 1, "unknown update report event 0"),
    (by_hand(5, 0, 7), 1, "unknown update report event 5"),
])
def test_malformed_reports_name_the_byte(frame, offset, words, node_js):  # noqa: F811
    with pytest.raises(PayloadDecodeError) as e:
        decode_report(frame)
    assert words in str(e.value) and f"(byte {offset})" in str(e.value)
    _agree(node_js, frame, FPORT, decode_report)


# The firmware's own encoder for each outcome the installer records (state, reason name, counter)
_FIRMWARE = """
import binascii
from bysans import update_report as U
root = ROOT
for state, reason, counter in OUTCOMES:
    print(binascii.hexlify(U.encode(U.note(state, reason, counter, None, root))).decode())
"""


def test_the_firmwares_encoder_agrees_with_the_layout_and_the_decoders(node_js, tmp_path):  # noqa: F811
    outcomes = [("confirmed", None, 7), ("failed", "WRONG_KOMMUNE", 0x12345678), ("failed", "MALFORMED", 0),
                ("rolled_back", "ROLLED_BACK", 3)]
    (tmp_path / "ota").mkdir()
    script = _FIRMWARE.replace("ROOT", repr(str(tmp_path))).replace("OUTCOMES", repr(outcomes))
    frames = [bytes.fromhex(h) for h in run_mp(script).split()]
    assert frames == [by_hand(2, 0, 7), by_hand(4, 8, 0x12345678), by_hand(4, 1, 0), by_hand(3, 4, 3)]
    for frame in frames:
        _agree(node_js, frame, FPORT, decode_report)
    assert decode_report(frames[1])["reason"] == "WRONG_KOMMUNE"
    assert decode_report(frames[3])["reason"] == "FAILED_BEFORE"


def test_the_fport_length_and_tables_are_the_firmwares():
    t = report_tables()
    assert (t["fport"], t["length"], t["repeat"]) == (FPORT, 7, 3)
    assert t["events"][1:] == ["installed", "confirmed", "rolled_back", "refused"]
    assert t["refusals"][5] == "DOWNGRADE"  # the one table of reason codes: bysans/ota/reasons.py


def _doc_example():
    text = (project_root() / "docs" / "formats" / "update-report.md").read_text()
    m = re.search(r"fleet codec decode ([0-9a-f]+) --fport 222 --json\n```\n\n```json\n(.*?)\n```", text, re.S)
    assert m, "docs/formats/update-report.md has no worked example"
    return bytes.fromhex(m.group(1)), json.loads(m.group(2))


def test_the_worked_example_in_the_docs(node_js, capsys):  # noqa: F811
    frame, expected = _doc_example()
    assert frame == by_hand(3, 3, 12)  # the example's words: rolled back by its self-test, counter 12
    assert _agree(node_js, frame, FPORT, decode_report)["data"] == expected
    assert fleet_main(["codec", "decode", frame.hex(), "--fport", "222", "--json"]) in (None, 0)
    assert json.loads(capsys.readouterr().out) == expected
    with pytest.raises(SystemExit) as e:
        fleet_main(["codec", "decode", frame.hex()[:-2], "--fport", "222"])
    assert e.value.code == PayloadDecodeError.exit_code
    assert "has 7 bytes, got 6" in capsys.readouterr().err
