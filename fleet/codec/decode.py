"""Decodes payload frames (docs/formats/payload.md; v2, and v1's with v1's tables) into plain dicts.

Every malformed input raises PayloadDecodeError naming the byte offset; nothing else escapes.

The bit reader is inlined: the frame is one integer and a field is one shift and mask at a bit position
kept in a local, and a Rice code's unary prefix is counted in one window of up to `rice_escape` bits,
not bit by bit. Errors and their offsets are those of reading the fields one bit at a time.
"""

from ..errors import PayloadDecodeError
from .spec import spec_tables


def _short(pos: int, n: int, what: str) -> PayloadDecodeError:
    return PayloadDecodeError(f"payload ends inside {what}", offset=min(pos >> 3, n))


def _rice(big: int, end: int, pos: int, n: int, k: int, raw_bits: int, escape: int, what: str):
    """One Rice code (unary quotient up to `escape` ones, then k bits; at the escape, raw_bits raw bits)
    at bit `pos`: (value, new pos)."""
    avail = end - pos
    m = escape if avail >= escape else avail
    ones = (1 << m) - 1
    zeros = ((big >> (avail - m)) & ones) ^ ones      # the next m bits, inverted
    if zeros:                                         # a 0 ends the quotient within the window
        q = m - zeros.bit_length()
        pos += q + 1
        if pos + k > end:
            raise _short(pos, n, what)
        pos += k
        return (q << k) | ((big >> (end - pos)) & ((1 << k) - 1)), pos
    if m < escape:                                    # the frame ends inside the quotient
        raise _short(end, n, what)
    pos += escape
    if pos + raw_bits > end:
        raise _short(pos, n, what)
    pos += raw_bits
    return (big >> (end - pos)) & ((1 << raw_bits) - 1), pos


def decode(payload: bytes, *, tables: dict | None = None) -> dict:
    """One frame -> {"version", "kind", ["net_status",] "interval_min", "age_min", <frame fields>, "readings": [...]}.

    "net_status" is there only when the node reported a failed WiFi join (payload_spec NET_STATUS_NAMES).

    Each reading has "age_min" (minutes before the uplink), one key per channel (null when the sensor
    failed, and its name in "faults"), and the kind's flag names as booleans.
    """
    out = decode_columns(payload, tables=tables)
    cols, faults, count = out.pop("columns"), out.pop("faults"), out.pop("count")
    keys = [*cols, "faults"]
    out["readings"] = [dict(zip(keys, row)) for row in
                       zip(*cols.values(), faults if faults is not None else [[] for _ in range(count)])]
    return out


def decode_columns(payload: bytes, *, tables: dict | None = None) -> dict:
    """decode() with the readings as columns, for ingest (no dict per reading to build and take apart):
    {"version", "kind", "interval_min", "age_min", <frame fields>, "count", "columns", "faults"}.

    "columns" maps each reading key ("age_min", the channels, the flag names, in decode()'s order) to a
    list with one value per reading, oldest first; "faults" is None when no channel failed, else one list
    of channel names per reading. Raises what decode() raises, at the same offsets.
    """
    t = tables or spec_tables()
    data = bytes(payload)
    n = len(data)
    if n < 2:
        raise PayloadDecodeError(f"a frame has at least 2 bytes, got {n}", offset=n)
    version = t["versions"].get(str(data[0]))
    if version is None:
        raise PayloadDecodeError(f"unknown payload version {data[0]} (this decoder reads "
                                 f"{' and '.join(t['versions'])})", offset=0)
    kind_id, count = (data[1] >> t["kind_shift"]) & t["kind_mask"], data[1] & t["count_mask"]
    kind = version["kinds"].get(str(kind_id))
    if kind is None:
        raise PayloadDecodeError(f"unknown frame kind {kind_id}", offset=1)
    out = {"version": data[0], "kind": kind["name"]}
    head = 2
    if data[1] & t["net_flag"]:  # a network status byte: the node's last WiFi join failed
        if n < 3:
            raise PayloadDecodeError("payload ends inside the network status", offset=2)
        code, names = data[2], t["net_status_names"]
        if code & ~t["net_code_mask"] or not 1 <= code < len(names):
            raise PayloadDecodeError(f"unknown network status {code}", offset=2)
        out["net_status"] = names[code]
        head = 3
    if count == 0:
        if n != head:
            raise PayloadDecodeError("unexpected bytes after an empty frame", offset=head)
        out.update({"interval_min": None, "age_min": None, "count": 0, "columns": {}, "faults": None})
        return out
    big = int.from_bytes(data, "big")
    end = n * 8
    pos = head * 8
    esc = t["rice_escape"]
    k = t["interval_bits"]
    if pos + k > end:
        raise _short(pos, n, "interval_min")
    pos += k
    interval = (big >> (end - pos)) & ((1 << k) - 1)
    age, pos = _rice(big, end, pos, n, 0, t["age_bits"], esc, "age_min")
    if pos + 1 > end:
        raise _short(pos, n, "fault flag")
    pos += 1
    any_fault = (big >> (end - pos)) & 1
    out["interval_min"], out["age_min"] = interval, age
    for f in kind["frame_fields"]:
        k = f["bits"]
        if pos + k > end:
            raise _short(pos, n, f["name"])
        pos += k
        v = (big >> (end - pos)) & ((1 << k) - 1)
        out[f["name"]] = v - (1 << k) if v >> (k - 1) else v
    chans = kind["channels"]
    faulty = None
    if any_fault:
        faulty = [None] * len(chans)
        for c, ch in enumerate(chans):
            what = f"fault map of {ch['name']}"
            if pos + 1 > end:
                raise _short(pos, n, what)
            pos += 1
            if (big >> (end - pos)) & 1:
                if pos + count > end:  # bit by bit: the first bit past the end is the error
                    raise _short(end, n, what)
                pos += count
                m = (big >> (end - pos)) & ((1 << count) - 1)
                faulty[c] = [bool(m >> (count - 1 - i) & 1) for i in range(count)]
    mode_bits = t["mode_bits"]
    esc_ones = (1 << esc) - 1
    series = []
    for ch in chans:
        bits, name, is_flags = ch["bits"], ch["name"], ch["flags"]
        top = (1 << bits) - 1
        if pos + bits > end:
            raise _short(pos, n, name)
        pos += bits
        w = (big >> (end - pos)) & top
        wire = [w]
        if count > 1:
            if pos + mode_bits > end:
                raise _short(pos, n, f"mode of {name}")
            pos += mode_bits
            mode = (big >> (end - pos)) & ((1 << mode_bits) - 1)
            if mode == 0:
                wire *= count
            else:
                k, raw_bits = mode - 1, bits + 1
                low = (1 << k) - 1
                for _ in range(count - 1):
                    at = pos >> 3
                    avail = end - pos
                    zeros = ((big >> (avail - esc)) & esc_ones) ^ esc_ones if avail >= esc else 0
                    if zeros:  # _rice()'s usual case, inline: the quotient ends within a full window
                        q = esc - zeros.bit_length()
                        pos += q + 1 + k
                        if pos > end:
                            raise _short(pos - k, n, name)
                        z = (q << k) | ((big >> (end - pos)) & low)
                    else:
                        z, pos = _rice(big, end, pos, n, k, raw_bits, esc, name)
                    if is_flags:
                        w ^= z
                    else:
                        w += z >> 1 if not z & 1 else -((z + 1) >> 1)
                    if not 0 <= w <= top:
                        raise PayloadDecodeError(f"{name} leaves its range", offset=at)
                    wire.append(w)
        series.append(wire)
    if pos < end:
        pad_at = pos >> 3
        if pos & 7:
            k = 8 - (pos & 7)
            pos += k  # pos + k <= end: end is a multiple of 8
            if (big >> (end - pos)) & ((1 << k) - 1):
                raise PayloadDecodeError("padding bits are not zero", offset=pad_at)
        if pos < end:
            raise PayloadDecodeError(f"{n - (pos >> 3)} unexpected bytes after the frame", offset=pos >> 3)
    flag_names = kind["flag_names"]
    columns = {"age_min": [age + (count - 1 - i) * interval for i in range(count)]}
    faults = None
    for c, (ch, wire) in enumerate(zip(chans, series)):
        if ch["flags"]:
            names = flag_names
            for bit, fname in enumerate(flag_names):
                columns[fname] = [bool(w >> bit & 1) for w in wire]
        else:
            names = (ch["name"],)
            lo, step = ch["min"], ch["step"]
            columns[ch["name"]] = [lo + w * step for w in wire]
        bad = faulty[c] if faulty is not None else None
        if bad is not None:  # the failed readings of this channel: null, and the channel named in "faults"
            if faults is None:
                faults = [[] for _ in range(count)]
            for i in range(count):
                if bad[i]:
                    for name in names:
                        columns[name][i] = None
                    faults[i].append(ch["name"])
    out.update({"count": count, "columns": columns, "faults": faults})
    return out
