"""Payload codec v1: the firmware encoder, the host decoder and the generated JavaScript (run in node)
agree, with each other and with the worked examples in docs/formats/payload.md."""

import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.cli import main as fleet_main
from fleet.codec import cayenne, decode, load_spec
from fleet.codec.javascript import TARGETS, render
from fleet.errors import PayloadDecodeError
from fleet.resources import firmware_dir, project_root

S = load_spec()
NODE = shutil.which("node") or "/usr/bin/node"

_RUNNER = r"""
const vm = require('vm'), fs = require('fs'), readline = require('readline');
const ctx = {};
for (const [target, path] of Object.entries(JSON.parse(process.argv[process.argv.length - 1]))) {
  ctx[target] = vm.createContext({});
  vm.runInContext(fs.readFileSync(path, 'utf8'), ctx[target]);
}
readline.createInterface({input: process.stdin}).on('line', (line) => {
  const q = JSON.parse(line), bytes = Array.from(Buffer.from(q.hex, 'hex'));
  let out;
  if (q.target === 'os2iot') {
    ctx.os2iot.q = {data: Buffer.from(q.hex, 'hex').toString('base64')};
    out = vm.runInContext('decode(q, {})', ctx.os2iot);
  } else {
    ctx[q.target].q = {bytes: bytes, fPort: 1, recvTime: '2025-01-01T00:00:00Z', variables: {}};
    out = vm.runInContext('decodeUplink(q)', ctx[q.target]);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
});
"""


@pytest.fixture(scope="module")
def node_js(tmp_path_factory, program):
    """decodes(target, frame) through the exported decoder in one long-lived node process."""
    program(NODE, "nodejs")
    d = tmp_path_factory.mktemp("js")
    paths = {}
    for t in TARGETS:
        paths[t] = str(d / f"{t}.js")
        Path(paths[t]).write_text(render(t))
    proc = subprocess.Popen([NODE, "-e", _RUNNER, json.dumps(paths)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)

    def run(target, frame: bytes):
        proc.stdin.write(json.dumps({"target": target, "hex": frame.hex()}) + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    yield run
    proc.stdin.close()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def fw():
    """The firmware's encoder (firmware/bysans/payload.py), imported under CPython."""
    sys.path.insert(0, str(firmware_dir()))
    try:
        yield importlib.import_module("bysans.payload")
    finally:
        sys.path.remove(str(firmware_dir()))


def _js_python_agree(node_js, frame: bytes):
    try:
        expected = {"data": decode(frame), "warnings": [], "errors": []}
    except PayloadDecodeError as e:
        expected = {"data": {}, "warnings": [], "errors": [str(e)]}
    for target in ("chirpstack", "tts"):
        assert node_js(target, frame) == expected, target
    os2 = node_js("os2iot", frame)
    assert os2 == (expected["data"] if not expected["errors"] else {"errors": expected["errors"]})
    return expected


# --- the worked examples in the documentation

def _doc_examples():
    text = (project_root() / "docs" / "formats" / "payload.md").read_text()
    return re.findall(r"```hex\n([0-9a-f]+)\n```\s*```json\n(.*?)\n```", text, re.S)


def test_doc_has_worked_examples():
    assert len(_doc_examples()) >= 3


@pytest.mark.parametrize("hexframe,expected", _doc_examples())
def test_doc_example_decodes_as_documented(hexframe, expected, node_js):
    frame = bytes.fromhex(hexframe)
    assert decode(frame) == json.loads(expected)
    _js_python_agree(node_js, frame)


def test_doc_example_is_what_the_firmware_encodes(fw):
    batch = fw.ReadingBatch(S.KIND_ENV)
    batch.add([1234, 655, 101325, 612, 8, 14, 3710])
    batch.add([1251, 650, 101318, 618, 9, 15, 3710])
    buf = bytearray(51)
    n = fw.encode(buf, batch, interval_min=10)
    assert buf[:n].hex() in [h for h, _ in _doc_examples()]


# --- generated readings: encoder -> Python decoder -> expected values; Python == JavaScript

def _expected(value, spec):
    name, coding, bits, vmin, step = spec
    if coding == S.FLAGS:
        return value & ((1 << bits) - 1)
    w = (value - vmin + step // 2) // step  # round half up, as the format says
    return vmin + max(0, min(w, (1 << bits) - 1)) * step


def _channel_values(spec):
    name, coding, bits, vmin, step = spec
    top = vmin + ((1 << bits) - 1) * step
    edge = st.sampled_from([vmin, top, vmin - 5 * step, top + 5 * step, 0, -1, -step // 2, step // 2])
    return st.one_of(st.integers(vmin - 2 * step, top + 2 * step), edge)


@st.composite
def batches(draw, kind=None):
    kind = draw(st.sampled_from([S.KIND_WASTE, S.KIND_ENV])) if kind is None else kind
    chans = S.KINDS[kind][1]
    n = draw(st.integers(0, S.COUNT_MAX))
    smooth = draw(st.booleans())
    rows = []
    for i in range(n):
        if smooth and rows:  # a realistic series: small steps from the previous reading
            row = [rows[-1][c] + draw(st.integers(-3, 3)) * chans[c][4] for c in range(len(chans))]
        else:
            row = [draw(_channel_values(ch)) for ch in chans]
        rows.append(row)
    faults = [draw(st.integers(0, (1 << len(chans)) - 1)) if draw(st.integers(0, 4)) == 0 else 0 for _ in rows]
    interval = draw(st.integers(0, 255))
    age = draw(st.one_of(st.integers(0, 20), st.integers(0, 70000)))
    frame_values = tuple(draw(st.integers(-3000, 3000)) for _ in S.KINDS[kind][2])
    return kind, rows, faults, interval, age, frame_values


def _encode(fw, kind, rows, faults, interval, age, frame_values):
    batch = fw.ReadingBatch(kind)
    for r, f in zip(rows, faults):
        batch.add(r, f)
    buf = bytearray(S.COUNT_MAX * 32)
    n = fw.encode(buf, batch, interval_min=interval, age_min=age, frame_values=frame_values)
    return bytes(buf[:n])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_generated_readings_roundtrip_and_js_agrees(fw, node_js, case):
    kind, rows, faults, interval, age, frame_values = case
    frame = _encode(fw, kind, rows, faults, interval, age, frame_values)
    out = decode(frame)
    name, chans, frame_fields, flag_names = S.KINDS[kind]
    assert out["kind"] == name and len(out["readings"]) == len(rows)
    if rows:
        assert out["interval_min"] == interval and out["age_min"] == min(age, 65535)
        for (fname, bits), v in zip(frame_fields, frame_values):
            assert out[fname] == max(-(1 << (bits - 1)), min(v, (1 << (bits - 1)) - 1))
    for i, (r, f) in enumerate(zip(rows, faults)):
        got = out["readings"][i]
        assert got["age_min"] == min(age, 65535) + (len(rows) - 1 - i) * interval
        for c, spec in enumerate(chans):
            bad = bool(f >> c & 1)
            if spec[1] == S.FLAGS:
                for b, flag in enumerate(flag_names):
                    assert got[flag] == (None if bad else bool(_expected(r[c], spec) >> b & 1))
            else:
                assert got[spec[0]] == (None if bad else _expected(r[c], spec))
            assert (spec[0] in got["faults"]) == bad
    _js_python_agree(node_js, frame)


def test_below_zero_full_batch_and_empty_batch(fw, node_js):
    rows = [[-2000 - 37 * i, 650, 99000, 420, 3, 7, 3600] for i in range(S.COUNT_MAX)]
    frame = _encode(fw, S.KIND_ENV, rows, [0] * len(rows), 10, 0, ())
    out = _js_python_agree(node_js, frame)["data"]
    assert [r["temp_cdeg"] for r in out["readings"]] == [_expected(r[0], S.ENV_CHANNELS[0]) for r in rows]
    assert out["readings"][0]["temp_cdeg"] == -2000
    empty = _encode(fw, S.KIND_WASTE, [], [], 15, 0, (0,))
    assert empty == bytes([S.VERSION, (S.KIND_WASTE << 5)])
    assert _js_python_agree(node_js, empty)["data"]["readings"] == []


def test_every_channel_faulty(fw, node_js):
    rows = [[0] * 5, [0] * 5]
    frame = _encode(fw, S.KIND_WASTE, rows, [0b11111, 0b11111], 15, 0, (0,))
    out = _js_python_agree(node_js, frame)["data"]
    for r in out["readings"]:
        assert r["faults"] == ["dist_mm", "fill_bp", "temp_cdeg", "batt_mv", "flags"]
        assert r["dist_mm"] is None and r["fire"] is None


# --- bad input: a named error with the byte, never a crash, the same in JavaScript

def test_truncated_frames_name_the_byte(fw, node_js):
    rows = [[800 + i, 2000 + 10 * i, 1500, 3700, 0] for i in range(8)]
    frame = _encode(fw, S.KIND_WASTE, rows, [0] * 8, 15, 0, (40,))
    for cut in range(len(frame)):
        with pytest.raises(PayloadDecodeError) as e:
            decode(frame[:cut])
        assert 0 <= e.value.offset <= cut and f"(byte {e.value.offset})" in str(e.value)
        _js_python_agree(node_js, frame[:cut])


@pytest.mark.parametrize("frame,offset,words", [
    (bytes([S.VERSION + 1, 0x21]), 0, "version"),
    (bytes([1, 0x61, 0, 0]), 1, "kind"),
    (bytes([1, 0x20, 0]), 2, "after an empty frame"),
    (bytes([1, 0x21, 15, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff]), 11, "padding"),
])
def test_malformed_frames(frame, offset, words, node_js):
    with pytest.raises(PayloadDecodeError) as e:
        decode(frame)
    assert e.value.offset == offset and words in e.value.message and e.value.hint
    _js_python_agree(node_js, frame)


def test_trailing_bytes_are_an_error(fw):
    frame = _encode(fw, S.KIND_WASTE, [[800, 2000, 1500, 3700, 0]], [0], 15, 0, (0,))
    with pytest.raises(PayloadDecodeError, match="unexpected bytes") as e:
        decode(frame + b"\x00\x00")
    assert e.value.offset == len(frame)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
def test_garbage_never_crashes(node_js, data):
    try:
        decode(bytes([S.VERSION]) + data)
    except PayloadDecodeError:
        pass
    _js_python_agree(node_js, bytes([S.VERSION]) + data)


# --- the firmware encoder's limits

def test_encode_fitting_respects_the_data_rate_limit(fw):
    batch = fw.ReadingBatch(S.KIND_ENV)
    for i in range(S.COUNT_MAX):
        batch.add([1000 + 97 * (i % 3), 500 + 40 * (i % 2), 100000 + 300 * (i % 4), 400 + 211 * (i % 5),
                   3 * i, 7 * i, 3700])
    buf = memoryview(bytearray(51))
    length, sent = fw.encode_fitting(buf, batch, interval_min=10)
    assert length <= 51 and 0 < sent < S.COUNT_MAX
    out = decode(bytes(buf[:length]))
    assert [r["co2_ppm"] for r in out["readings"]] == [_expected(400 + 211 * (i % 5), S.ENV_CHANNELS[3])
                                                       for i in range(sent)]
    assert out["age_min"] == (S.COUNT_MAX - sent) * 10


# --- CayenneLPP baseline and the CLI

def test_cayenne_baseline_sizes_match_reference():
    # REFERENCE.md §3: waste 4+4+4+4+3 = 19 B, environment 4+3+4+4+4+4+4 = 27 B
    w = cayenne.waste_reading({"dist_mm": 812, "fill_bp": 3490, "temp_cdeg": -350, "batt_mv": 3710, "flags": 3})
    e = cayenne.env_reading({"temp_cdeg": 2720, "rh_permille": 655, "pressure_pa": 101325, "co2_ppm": 612,
                             "pm2_5_ugm3": 8, "pm10_ugm3": 14, "batt_mv": 3710})
    assert (len(w), len(e)) == (19, 27)
    assert cayenne.temperature(3, 27.2) == bytes.fromhex("03670110")  # the CayenneLPP documentation's example
    assert e[:4] == bytes.fromhex("01670110")


@pytest.mark.parametrize("target", TARGETS)
def test_cli_export_writes_the_decoder(tmp_path, target, capsys):
    out = tmp_path / "codec.js"
    assert fleet_main(["codec", "export", "--target", target, "-o", str(out)]) in (None, 0)
    js = out.read_text()
    assert ("function decode(payload, metadata)" if target == "os2iot" else "function decodeUplink(input)") in js


def test_cli_decode_json_and_bad_input(capsys):
    fleet_main(["codec", "decode", "01420a118d64199bdd301324a00838071cb980", "--json"])
    assert json.loads(capsys.readouterr().out)["readings"][1]["temp_cdeg"] == 1250
    with pytest.raises(SystemExit) as e:
        fleet_main(["codec", "decode", "zz"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        fleet_main(["codec", "decode", "0123"])
    assert e.value.code == PayloadDecodeError.exit_code
    assert "(byte 2)" in capsys.readouterr().err
