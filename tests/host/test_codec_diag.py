"""The diagnostics record (docs/formats/diagnostics.md): the host decoder and the generated JavaScript
decoders (run in node, dispatching on the FPort) agree with records laid out by hand from the format's
text, with the worked example in the docs, and on malformed records; a reading frame on another FPort
still decodes as before."""

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from fleet.cli import main as fleet_main
from fleet.codec import decode
from fleet.codec.diag import decode_diag, diag_tables
from fleet.codec.javascript import TARGETS, render
from fleet.errors import PayloadDecodeError
from fleet.resources import project_root

NODE = shutil.which("node") or "/usr/bin/node"
FPORT = 221

_RUNNER = r"""
const vm = require('vm'), fs = require('fs'), readline = require('readline');
const ctx = {};
for (const [target, path] of Object.entries(JSON.parse(process.argv[process.argv.length - 1]))) {
  ctx[target] = vm.createContext({});
  vm.runInContext(fs.readFileSync(path, 'utf8'), ctx[target]);
}
readline.createInterface({input: process.stdin}).on('line', (line) => {
  const q = JSON.parse(line), buf = Buffer.from(q.hex, 'hex');
  let out;
  if (q.target === 'os2iot') {
    ctx.os2iot.q = {data: buf.toString('base64'), fPort: q.fport};
    out = vm.runInContext('decode(q, {})', ctx.os2iot);
  } else {
    ctx[q.target].q = {bytes: Array.from(buf), fPort: q.fport, recvTime: '2025-01-01T00:00:00Z', variables: {}};
    out = vm.runInContext('decodeUplink(q)', ctx[q.target]);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
});
"""


@pytest.fixture(scope="module")
def node_js(tmp_path_factory, program):
    program(NODE, "nodejs")
    d = tmp_path_factory.mktemp("js")
    paths = {t: str(d / f"{t}.js") for t in TARGETS}
    for t, p in paths.items():
        Path(p).write_text(render(t))
    proc = subprocess.Popen([NODE, "-e", _RUNNER, json.dumps(paths)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)

    def run(target, frame: bytes, fport: int):
        proc.stdin.write(json.dumps({"target": target, "hex": frame.hex(), "fport": fport}) + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    yield run
    proc.stdin.close()
    proc.wait(timeout=10)


def by_hand(cause, boots, wdt, heap_units, exc):
    """The layout as docs/formats/diagnostics.md states it: big-endian, version 1 first."""
    return struct.pack(">BBHHHI", 1, cause, boots, wdt, heap_units, exc)


def _agree(node_js, frame, fport=FPORT, decoder=decode_diag):
    try:
        expected = {"data": decoder(frame), "warnings": [], "errors": []}
    except PayloadDecodeError as e:
        expected = {"data": {}, "warnings": [], "errors": [str(e).split(" — ")[0]]}
    for target in ("chirpstack", "tts"):
        got = node_js(target, frame, fport)
        if expected["errors"]:
            assert got["errors"] and got["errors"][0] == expected["errors"][0], (target, got)
        else:
            assert got == expected, target
    os2 = node_js("os2iot", frame, fport)
    assert os2 == (expected["data"] if not expected["errors"] else {"errors": expected["errors"]})
    return expected


CASES = [
    (by_hand(3, 7, 2, 4375, 0xA1B2C3D4), {"diag": 1, "reset_cause": "watchdog", "boots": 7, "watchdog_resets": 2,
                                           "heap_min": 70000, "exception": "a1b2c3d4"}),
    (by_hand(1, 1, 0, 0xFFFF, 0), {"diag": 1, "reset_cause": "power_on", "boots": 1, "watchdog_resets": 0,
                                    "heap_min": None, "exception": None}),
    (by_hand(5, 65535, 65535, 0, 0x0000BEEF), {"diag": 1, "reset_cause": "soft", "boots": 65535,
                                                "watchdog_resets": 65535, "heap_min": 0, "exception": "0000beef"}),
    (by_hand(200, 2, 0, 10, 1), {"diag": 1, "reset_cause": "unknown", "boots": 2, "watchdog_resets": 0,
                                  "heap_min": 160, "exception": "00000001"}),
]


@pytest.mark.parametrize("frame,expected", CASES)
def test_records_laid_out_by_hand_decode_alike_on_host_and_in_javascript(frame, expected, node_js):
    assert decode_diag(frame) == expected
    assert _agree(node_js, frame)["data"] == expected


@pytest.mark.parametrize("frame,offset,words", [
    (b"", 0, "empty"),
    (b"\x02" + bytes(11), 0, "unknown diagnostics version 2"),
    (by_hand(1, 1, 0, 0, 0)[:9], 9, "has 12 bytes, got 9"),
    (by_hand(1, 1, 0, 0, 0) + b"\x00", 12, "has 12 bytes, got 13"),
])
def test_malformed_records_name_the_byte(frame, offset, words, node_js):
    with pytest.raises(PayloadDecodeError) as e:
        decode_diag(frame)
    assert words in str(e.value) and f"(byte {offset})" in str(e.value)
    _agree(node_js, frame)


def test_a_reading_frame_on_its_own_fport_is_not_taken_for_diagnostics(node_js):
    empty = bytes([1, 1 << 5])  # an empty waste batch (a heartbeat), docs/formats/payload.md
    assert node_js("chirpstack", empty, 1)["data"] == decode(empty)
    assert node_js("tts", empty, 1)["data"] == decode(empty)


def test_the_fport_and_length_are_the_firmwares():
    t = diag_tables()
    assert t["fport"] == FPORT and t["length"] == 12 and sum(n for _, n in t["fields"]) + 1 == t["length"]


def _doc_example():
    text = (project_root() / "docs" / "formats" / "diagnostics.md").read_text()
    m = re.search(r"\$ fleet codec decode ([0-9a-f]+) --fport 221 --json\n(\{.*?\n\})\n```", text, re.S)
    assert m, "docs/formats/diagnostics.md has no worked example"
    return bytes.fromhex(m.group(1)), json.loads(m.group(2))


def test_the_worked_example_in_the_docs(node_js, capsys):
    frame, expected = _doc_example()
    assert _agree(node_js, frame)["data"] == expected
    assert fleet_main(["codec", "decode", frame.hex(), "--fport", "221", "--json"]) in (None, 0)
    assert json.loads(capsys.readouterr().out) == expected
    with pytest.raises(SystemExit) as e:
        fleet_main(["codec", "decode", frame.hex()[:-2], "--fport", "221"])
    assert e.value.code == PayloadDecodeError.exit_code
    assert "has 12 bytes, got 11" in capsys.readouterr().err
