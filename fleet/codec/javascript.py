"""JavaScript decoders for the network servers, generated from the payload spec (ECMAScript 5.1).

ChirpStack v4 and The Things Stack take `decodeUplink(input)` returning {data, warnings, errors};
OS2iot takes `decode(payload, metadata)` with `payload.data` in base64. All three wrap one decoder that
mirrors fleet/codec/decode.py, error messages included.

The Things Stack's formatter also has `normalizeUplink(input)`: the newest reading of an uplink in The
Things Stack's normalized payload schema (TheThingsNetwork/lorawan-devices lib/payload.json, checked in
tests against the copy in tests/data/tts/). The schema has air temperature (°C), relative humidity (%),
pressure (hPa, 900 to 1100), CO2 (ppm) and battery (V); it has nothing for particulate matter or a fill
level, so those stay in the decoded payload. A value outside the schema's range is left out with a
warning (The Things Stack drops a normalized payload that fails the schema). The schema's measurements
carry no receive time, so only the newest reading is normalized: all of them are in the decoded payload.

An uplink on the settings FPort (3) is a node's acknowledgement of settings commands
(docs/formats/settings.md): every target decodes it as {"settings_ack": [{"seq", "result"}]}. FPort 221 is the
diagnostics record (docs/formats/diagnostics.md), FPort 222 the update report (docs/formats/update-report.md).
"""

import json

from .. import firmware_data
from ..errors import UsageError
from .diag import diag_tables
from .spec import spec_tables
from .update_report import report_tables

TARGETS = ("chirpstack", "tts", "os2iot")

_CORE = r"""
var BYSANS_SPEC = __SPEC__;

function BysansError(message, offset) {
  this.message = message + " (byte " + offset + ")";
  this.offset = offset;
}

function bysansDecode(bytes) {
  var t = BYSANS_SPEC, n = bytes.length, pos = 16, end = n * 8;
  function get(bits, what) {
    if (pos + bits > end) { throw new BysansError("payload ends inside " + what, Math.min(pos >> 3, n)); }
    var v = 0;
    for (var i = 0; i < bits; i++) {
      v = v * 2 + ((bytes[pos >> 3] >> (7 - (pos & 7))) & 1);
      pos++;
    }
    return v;
  }
  function rice(k, raw, what) {
    var q = 0;
    while (q < t.rice_escape && get(1, what)) { q++; }
    if (q === t.rice_escape) { return get(raw, what); }
    return q * Math.pow(2, k) + get(k, what);
  }
  function unzigzag(z) { return z % 2 === 0 ? z / 2 : -(z + 1) / 2; }
  if (n < 2) { throw new BysansError("a frame has at least 2 bytes, got " + n, n); }
  var version = t.versions[String(bytes[0])];
  if (!version) {
    var known = [];
    for (var v in t.versions) { if (t.versions.hasOwnProperty(v)) { known.push(v); } }
    throw new BysansError("unknown payload version " + bytes[0] + " (this decoder reads " + known.join(" and ") + ")",
                          0);
  }
  var kindId = (bytes[1] >> t.kind_shift) & t.kind_mask, count = bytes[1] & t.count_mask;
  var kind = version.kinds[String(kindId)];
  if (!kind) { throw new BysansError("unknown frame kind " + kindId, 1); }
  var out = {version: bytes[0], kind: kind.name}, readings = [], head = 2;
  if (bytes[1] & t.net_flag) {
    if (n < 3) { throw new BysansError("payload ends inside the network status", 2); }
    var code = bytes[2];
    if ((code & ~t.net_code_mask) || code < 1 || code >= t.net_status_names.length) {
      throw new BysansError("unknown network status " + code, 2);
    }
    out.net_status = t.net_status_names[code];
    head = 3;
  }
  pos = head * 8;
  if (count === 0) {
    if (n !== head) { throw new BysansError("unexpected bytes after an empty frame", head); }
    out.interval_min = null; out.age_min = null; out.readings = readings;
    return out;
  }
  var interval = get(t.interval_bits, "interval_min");
  var age = rice(0, t.age_bits, "age_min");
  var anyFault = get(1, "fault flag");
  out.interval_min = interval; out.age_min = age;
  var c, i, f, ch;
  for (f = 0; f < kind.frame_fields.length; f++) {
    var ff = kind.frame_fields[f], fv = get(ff.bits, ff.name);
    out[ff.name] = fv >= Math.pow(2, ff.bits - 1) ? fv - Math.pow(2, ff.bits) : fv;
  }
  var chans = kind.channels, faulty = [];
  for (c = 0; c < chans.length; c++) {
    faulty.push([]);
    for (i = 0; i < count; i++) { faulty[c].push(false); }
  }
  if (anyFault) {
    for (c = 0; c < chans.length; c++) {
      if (get(1, "fault map of " + chans[c].name)) {
        for (i = 0; i < count; i++) { faulty[c][i] = get(1, "fault map of " + chans[c].name) === 1; }
      }
    }
  }
  var series = [];
  for (c = 0; c < chans.length; c++) {
    ch = chans[c];
    var top = Math.pow(2, ch.bits) - 1;
    var wire = [get(ch.bits, ch.name)];
    if (count > 1) {
      var mode = get(t.mode_bits, "mode of " + ch.name);
      for (i = 1; i < count; i++) {
        var at = pos >> 3, prev = wire[i - 1], nxt;
        if (mode === 0) { wire.push(prev); continue; }
        var z = rice(mode - 1, ch.bits + 1, ch.name);
        nxt = ch.flags ? (prev ^ z) : prev + unzigzag(z);
        if (nxt < 0 || nxt > top) { throw new BysansError(ch.name + " leaves its range", at); }
        wire.push(nxt);
      }
    }
    series.push(wire);
  }
  if (pos < end) {
    var padAt = pos >> 3;
    if ((pos & 7) && get(8 - (pos & 7), "padding")) { throw new BysansError("padding bits are not zero", padAt); }
    if (pos < end) { throw new BysansError((n - (pos >> 3)) + " unexpected bytes after the frame", pos >> 3); }
  }
  for (i = 0; i < count; i++) {
    var r = {age_min: age + (count - 1 - i) * interval}, faults = [];
    for (c = 0; c < chans.length; c++) {
      ch = chans[c];
      var w = series[c][i], bad = faulty[c][i];
      if (ch.flags) {
        for (var b = 0; b < kind.flag_names.length; b++) {
          r[kind.flag_names[b]] = bad ? null : ((w >> b) & 1) === 1;
        }
      } else {
        r[ch.name] = bad ? null : ch.min + w * ch.step;
      }
      if (bad) { faults.push(ch.name); }
    }
    r.faults = faults;
    readings.push(r);
  }
  out.readings = readings;
  return out;
}

// The diagnostics record (docs/formats/diagnostics.md), on its own FPort.
var BYSANS_DIAG = __DIAG__;

function bysansDiagDecode(bytes) {
  var t = BYSANS_DIAG, n = bytes.length, pos = 1, out = {};
  if (n === 0) { throw new BysansError("an empty diagnostics record", 0); }
  if (bytes[0] !== t.version) {
    throw new BysansError("unknown diagnostics version " + bytes[0] + " (this decoder reads " + t.version + ")", 0);
  }
  if (n !== t.length) {
    throw new BysansError("a diagnostics record has " + t.length + " bytes, got " + n, Math.min(n, t.length));
  }
  out.diag = bytes[0];
  for (var f = 0; f < t.fields.length; f++) {
    var v = 0;
    for (var i = 0; i < t.fields[f][1]; i++) { v = v * 256 + bytes[pos++]; }
    out[t.fields[f][0]] = v;
  }
  out.reset_cause = out.reset_cause < t.causes.length ? t.causes[out.reset_cause] : "unknown";
  out.heap_min = out.heap_min === t.heap_none ? null : out.heap_min * t.heap_unit;
  out.exception = out.exception ? ("0000000" + out.exception.toString(16)).slice(-8) : null;
  return out;
}

// The update report (docs/formats/update-report.md), on its own FPort.
var BYSANS_REPORT = __REPORT__;

function bysansReportDecode(bytes) {
  var t = BYSANS_REPORT, n = bytes.length;
  if (n === 0) { throw new BysansError("an empty update report", 0); }
  if (bytes[0] !== t.version) {
    throw new BysansError("unknown update report version " + bytes[0] + " (this decoder reads " + t.version + ")", 0);
  }
  if (n !== t.length) {
    throw new BysansError("an update report has " + t.length + " bytes, got " + n, Math.min(n, t.length));
  }
  var event = bytes[1], reason = bytes[2];
  if (event < 1 || event >= t.events.length) { throw new BysansError("unknown update report event " + event, 1); }
  var name = t.events[event], table = null, why = null;
  if (name === "refused") { table = t.refusals; } else if (name === "rolled_back") { table = t.rollback_reasons; }
  if (table !== null && reason !== 0) { why = reason < table.length ? table[reason] : "unknown"; }
  var counter = ((bytes[3] * 256 + bytes[4]) * 256 + bytes[5]) * 256 + bytes[6];
  return {update_report: bytes[0], event: name, reason: why, counter: counter === 0 ? null : counter};
}

var BYSANS_SETTINGS = __SETTINGS__;

// A node's acknowledgement of settings commands, on FPort BYSANS_SETTINGS.fport (docs/formats/settings.md).
function bysansSettingsAck(bytes) {
  var s = BYSANS_SETTINGS, n = bytes.length, acks = [];
  if (n < 4 || (n - 1) % 3 !== 0) {
    throw new BysansError("a settings acknowledgement is 1 + 3k bytes, got " + n, n);
  }
  if (bytes[0] !== s.version) { throw new BysansError("unknown settings acknowledgement version " + bytes[0], 0); }
  for (var i = 1; i < n; i += 3) {
    var r = s.results[bytes[i + 2]];
    if (r === undefined) { throw new BysansError("unknown settings result " + bytes[i + 2], i + 2); }
    acks.push({seq: (bytes[i] << 8) | bytes[i + 1], result: r});
  }
  return {settings_ack: acks};
}

function bysansDecodePort(bytes, fPort) {
  if (fPort === BYSANS_DIAG.fport) { return bysansDiagDecode(bytes); }
  if (fPort === BYSANS_REPORT.fport) { return bysansReportDecode(bytes); }
  if (fPort === BYSANS_SETTINGS.fport) { return bysansSettingsAck(bytes); }
  return bysansDecode(bytes);
}

function bysansErrorText(e) {
  return (e instanceof BysansError) ? e.message : ("decoder failure: " + e);
}
"""

_UPLINK = r"""
// ChirpStack v4 / The Things Stack: input = {bytes, fPort, recvTime, variables}.
function decodeUplink(input) {
  try {
    return {data: bysansDecodePort(input.bytes, input.fPort), warnings: [], errors: []};
  } catch (e) {
    return {data: {}, warnings: [], errors: [bysansErrorText(e)]};
  }
}
"""

_OS2IOT = r"""
// OS2iot: payload is the ChirpStack event, payload.data the frame in base64.
function bysansBase64(s) {
  var abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", out = [], acc = 0, bits = 0;
  for (var i = 0; i < s.length; i++) {
    var ch = s.charAt(i);
    if (ch === "=") { break; }
    var v = abc.indexOf(ch);
    if (v < 0) { continue; }
    acc = (acc << 6) | v; bits += 6;
    if (bits >= 8) { bits -= 8; out.push((acc >> bits) & 0xff); }
  }
  return out;
}

function decode(payload, metadata) {
  try {
    return bysansDecodePort(bysansBase64(String(payload.data)), payload.fPort);
  } catch (e) {
    return {errors: [bysansErrorText(e)]};
  }
}
"""

_NORMALIZE = r"""
// The Things Stack: the newest reading in the normalized payload schema (LoRaWAN Device Repository,
// lib/payload.json). input = {data: the decoded payload}.
var BYSANS_NORMALIZED = __NORMALIZED__;

function normalizeUplink(input) {
  var d = input.data || {}, map = BYSANS_NORMALIZED[d.kind], warnings = [];
  if (!map || !d.readings || d.readings.length === 0) { return {data: [], warnings: [], errors: []}; }
  var r = d.readings[d.readings.length - 1], m = {};
  for (var i = 0; i < map.length; i++) {
    var f = map[i], v = r[f.field];
    if (v === null || v === undefined) { continue; }
    v = v / f.divisor;
    if ((f.min !== null && v < f.min) || (f.max !== null && v > f.max)) {
      warnings.push(f.path.join(".") + " " + v + " is outside the schema's range and left out");
      continue;
    }
    var o = m;
    for (var k = 0; k < f.path.length - 1; k++) {
      if (!o[f.path[k]]) { o[f.path[k]] = {}; }
      o = o[f.path[k]];
    }
    o[f.path[f.path.length - 1]] = v;
  }
  return {data: [m], warnings: warnings, errors: []};
}
"""

# The Things Stack's normalized payload: decoded field -> (path in a measurement, divisor from the field's
# unit to the schema's, the schema's minimum and maximum or None). The waste node's temperature is the
# bin's, not the air's: only its battery has a place in the schema.
NORMALIZED = {
    "env": (("temp_cdeg", ("air", "temperature"), 100, -273.15, None),
            ("rh_permille", ("air", "relativeHumidity"), 10, 0, 100),
            ("pressure_pa", ("air", "pressure"), 100, 900, 1100),
            ("co2_ppm", ("air", "co2"), 1, 0, 1000000),
            ("batt_mv", ("battery",), 1000, 0, None)),
    "waste": (("batt_mv", ("battery",), 1000, 0, None),),
}


def _normalized_table(tables: dict) -> dict:
    channels = {k["name"]: {c["name"] for c in k["channels"]} for k in tables["kinds"].values()}
    out = {}
    for kind, fields in NORMALIZED.items():
        for field, *_ in fields:
            assert field in channels[kind], f"{kind} has no channel {field}"
        out[kind] = [{"field": f, "path": list(p), "divisor": d, "min": lo, "max": hi} for f, p, d, lo, hi in fields]
    return out


_HEADER = {
    "chirpstack": "ChirpStack v4 device-profile codec",
    "tts": "The Things Stack v3 uplink payload formatter",
    "os2iot": "OS2iot payload decoder",
}


def render(target: str) -> str:
    """The decoder for one network server, as JavaScript source."""
    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r}", hint=f"use one of: {', '.join(TARGETS)}")
    tables = spec_tables()
    head = (f"// Bysans payload format v{tables['version']}: {_HEADER[target]}.\n"
            "// Generated by `fleet codec export` from firmware/bysans/payload_spec.py; do not edit.\n"
            "// Format: docs/formats/payload.md\n")
    settings = firmware_data.load("bysans/settings_spec.py")  # (not fleet.settings: no registry to load)
    body = (_CORE.replace("__SPEC__", json.dumps(tables, sort_keys=True))
            .replace("__DIAG__", json.dumps(diag_tables(), sort_keys=True))
            .replace("__REPORT__", json.dumps(report_tables(), sort_keys=True))
            .replace("__SETTINGS__", json.dumps({"fport": settings.FPORT, "version": settings.VERSION,
                                                 "results": list(settings.RESULT_NAMES)})))
    if target == "os2iot":
        return head + body + _OS2IOT
    if target == "tts":
        return head + body + _UPLINK + _NORMALIZE.replace("__NORMALIZED__", json.dumps(_normalized_table(tables)))
    return head + body + _UPLINK
