# Payload codec (format v2), the firmware side: a batch of interval readings and its encoder. The format is
# declared in bysans/payload_spec.py (the host decodes with the same tables); runs once per uplink, so
# it favours clarity over speed, but writes into a buffer the caller allocated once.
from array import array

from bysans import payload_spec as S


class PayloadError(Exception):
    """A batch or frame the encoder cannot write (bad kind, full batch, buffer too small)."""


class PayloadTooLarge(PayloadError):
    """The frame does not fit the buffer or the data rate's limit; send fewer readings."""


class ReadingBatch:
    """Queued interval readings of one kind, oldest first: values row-major, one fault mask per row."""

    def __init__(self, kind, capacity=S.COUNT_MAX):
        if kind not in S.KINDS:
            raise PayloadError("unknown kind")
        self.kind = kind
        self.channels = S.KINDS[kind][1]
        self.width = len(self.channels)
        self.capacity = capacity
        self.values = array("i", bytes(4 * capacity * self.width))
        self.faults = array("B", bytes(capacity))
        self.n = 0

    def add(self, values, fault_mask=0):
        """Appends one reading (a sequence in channel-table order); returns its row index."""
        if self.n >= self.capacity:
            raise PayloadError("batch full")
        base = self.n * self.width
        for c in range(self.width):
            self.values[base + c] = values[c]
        self.faults[self.n] = fault_mask
        self.n += 1
        return self.n - 1

    def drop(self, k):
        """Forgets the k oldest readings (after they were sent)."""
        k = min(k, self.n)
        w = self.width
        for i in range((self.n - k) * w):
            self.values[i] = self.values[i + k * w]
        for i in range(self.n - k):
            self.faults[i] = self.faults[i + k]
        self.n -= k

    def clear(self):
        self.n = 0


class _Bits:
    # MSB-first bit writer over a caller's buffer.
    def __init__(self, buf, start_byte):
        self.buf = buf
        self.pos = start_byte * 8
        self.limit = len(buf) * 8

    def put(self, value, nbits):
        if self.pos + nbits > self.limit:
            raise PayloadTooLarge("frame does not fit")
        buf = self.buf
        for i in range(nbits - 1, -1, -1):
            byte = self.pos >> 3
            mask = 0x80 >> (self.pos & 7)
            if (value >> i) & 1:
                buf[byte] |= mask
            else:
                buf[byte] &= ~mask & 0xFF
            self.pos += 1

    def put_rice(self, z, k, raw_bits):
        # payload_spec: q = z >> k one bits, a zero, k low bits; or the escape and z in raw_bits
        q = z >> k
        if q < S.RICE_ESCAPE:
            self.put(((1 << q) - 1) << 1, q + 1)
            self.put(z, k)
        else:
            self.put((1 << S.RICE_ESCAPE) - 1, S.RICE_ESCAPE)
            self.put(z, raw_bits)


def rice_bits(z, k, raw_bits):
    """Bits of z (>= 0) in the Rice code of order k with the given escape width."""
    q = z >> k
    return q + 1 + k if q < S.RICE_ESCAPE else S.RICE_ESCAPE + raw_bits


def zigzag(d):
    return d << 1 if d >= 0 else ((-d) << 1) - 1


def to_wire(value, coding, bits, vmin, step):
    """Scaled integer -> wire value (rounded to the channel's step, clamped to its bits)."""
    top = (1 << bits) - 1
    if coding == S.FLAGS:
        return value & top
    w = (value - vmin + step // 2) // step
    return 0 if w < 0 else (top if w > top else w)


def _wire_at(batch, i, c, spec):
    return to_wire(batch.values[i * batch.width + c], spec[1], spec[2], spec[3], spec[4])


def _series_deltas(batch, n, c, spec):
    # yields (wire of reading 0, [z of deltas]) with faulty readings repeating the previous good value;
    # leading faulty readings take the first good one (all faulty: 0)
    bit = 1 << c
    first = 0
    for i in range(n):
        if not batch.faults[i] & bit:
            first = _wire_at(batch, i, c, spec)
            break
    prev = first
    zs = []
    for i in range(1, n):
        cur = prev if batch.faults[i] & bit else _wire_at(batch, i, c, spec)
        zs.append(cur ^ prev if spec[1] == S.FLAGS else zigzag(cur - prev))
        prev = cur
    return first, zs


def _best_mode(zs, raw_bits):
    # mode 0 if every delta is zero, else 1 + the cheapest Rice order
    if not any(zs):
        return 0
    best, best_bits = 1, None
    for k in range(S.MODE_MAX):
        bits = 0
        for z in zs:
            bits += rice_bits(z, k, raw_bits)
        if best_bits is None or bits < best_bits:
            best, best_bits = k + 1, bits
    return best


def encode(buf, batch, n=None, *, interval_min, age_min=0, frame_values=(), net=0):
    """Writes the oldest n readings of batch (all by default) into buf; returns the frame length.

    frame_values: the kind's frame fields in table order (waste: fill_rate_bp_h); net: a network status
    code (payload_spec.NET_STATUS_NAMES: the node's last WiFi join failed), 0 for none.
    Raises PayloadTooLarge if the frame does not fit len(buf) (pass a memoryview of the data rate's
    maximum, e.g. 51 bytes at SF12).
    """
    n = batch.n if n is None else n
    if n > batch.n or n > S.COUNT_MAX:
        raise PayloadError("more readings than queued")
    if not 0 <= interval_min < (1 << S.INTERVAL_BITS):
        raise PayloadError("interval_min out of range")
    _name, channels, frame_fields, _flags = S.KINDS[batch.kind]
    if not 0 <= net <= S.NET_CODE_MASK:
        raise PayloadError("net status out of range")
    head = 3 if net else 2
    if len(buf) < head:
        raise PayloadTooLarge("frame does not fit")
    buf[0] = S.VERSION
    buf[1] = (S.NET_FLAG if net else 0) | (batch.kind << S.KIND_SHIFT) | n
    if net:
        buf[2] = net
    if n == 0:
        return head
    w = _Bits(buf, head)
    w.put(interval_min, S.INTERVAL_BITS)
    w.put_rice(min(age_min, (1 << S.AGE_BITS) - 1), 0, S.AGE_BITS)
    any_fault = 0
    for i in range(n):
        any_fault |= batch.faults[i]
    w.put(1 if any_fault else 0, 1)
    for k in range(len(frame_fields)):
        bits = frame_fields[k][1]
        lim = 1 << (bits - 1)
        v = frame_values[k]
        v = -lim if v < -lim else (lim - 1 if v >= lim else v)
        w.put(v & ((1 << bits) - 1), bits)
    if any_fault:
        for c in range(len(channels)):
            bit = 1 << c
            has = any_fault & bit
            w.put(1 if has else 0, 1)
            if has:
                for i in range(n):
                    w.put(1 if batch.faults[i] & bit else 0, 1)
    for c in range(len(channels)):
        spec = channels[c]
        base, zs = _series_deltas(batch, n, c, spec)
        w.put(base, spec[2])
        if n > 1:
            raw = spec[2] + 1
            mode = _best_mode(zs, raw)
            w.put(mode, S.MODE_BITS)
            if mode:
                for z in zs:
                    w.put_rice(z, mode - 1, raw)
    end = (w.pos + 7) >> 3
    pad = end * 8 - w.pos
    if pad:
        w.put(0, pad)
    return end


def encode_fitting(buf, batch, *, interval_min, age_min=0, frame_values=(), net=0):
    """Encodes as many of the oldest readings as fit buf; returns (frame length, readings sent)."""
    n = min(batch.n, S.COUNT_MAX)
    while True:
        try:
            # age of the newest reading sent grows by one interval per reading held back
            age = age_min + (batch.n - n) * interval_min
            return encode(buf, batch, n, interval_min=interval_min, age_min=age,
                          frame_values=frame_values, net=net), n
        except PayloadTooLarge:
            if n == 0:
                raise
            n -= 1
