"""JavaScript decoders for the network servers, generated from the payload spec (ECMAScript 5.1).

ChirpStack v4 and The Things Stack take `decodeUplink(input)` returning {data, warnings, errors};
OS2iot takes `decode(payload, metadata)` with `payload.data` in base64. All three wrap one decoder that
mirrors fleet/codec/decode.py, error messages included.
"""

import json

from ..errors import UsageError
from .spec import spec_tables

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
  if (bytes[0] !== t.version) {
    throw new BysansError("unknown payload version " + bytes[0] + " (this decoder reads " + t.version + ")", 0);
  }
  var kindId = bytes[1] >> t.kind_shift, count = bytes[1] & t.count_mask;
  var kind = t.kinds[String(kindId)];
  if (!kind) { throw new BysansError("unknown frame kind " + kindId, 1); }
  var out = {version: bytes[0], kind: kind.name}, readings = [];
  if (count === 0) {
    if (n !== 2) { throw new BysansError("unexpected bytes after an empty frame", 2); }
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

function bysansErrorText(e) {
  return (e instanceof BysansError) ? e.message : ("decoder failure: " + e);
}
"""

_UPLINK = r"""
// ChirpStack v4 / The Things Stack: input = {bytes, fPort, recvTime, variables}.
function decodeUplink(input) {
  try {
    return {data: bysansDecode(input.bytes), warnings: [], errors: []};
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
    return bysansDecode(bysansBase64(String(payload.data)));
  } catch (e) {
    return {errors: [bysansErrorText(e)]};
  }
}
"""

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
    body = _CORE.replace("__SPEC__", json.dumps(tables, sort_keys=True))
    return head + body + (_OS2IOT if target == "os2iot" else _UPLINK)
