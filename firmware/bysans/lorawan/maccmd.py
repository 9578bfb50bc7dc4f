# MAC commands (LoRaWAN 1.0.4 §5, EU868 rules from RP002): the answers queued for the next uplink and the
# context the handlers share, which the MAC keeps at all times. Parsing what the network sends, changing the
# Plan and queueing the answers is bysans.lorawan.macparse, loaded by process() only when a downlink carries
# MAC commands (most wakes' downlinks carry none: its code and names stay out of the heap then). Unknown or
# truncated commands end parsing (their length is unknown) and are counted; nothing here raises on network
# input.
from micropython import const

LINK_CHECK = const(0x02)  # LinkCheckReq, which the MAC queues itself (link_check())

_ANSWERS_MAX = const(15)  # FOpts holds 15 bytes


class Answers:
    # Answers waiting for the next uplink, in a preallocated buffer. Sticky answers (RXParamSetupAns,
    # RXTimingSetupAns, DlChannelAns) repeat in every uplink until a downlink arrives (1.0.4 §5.4, §5.7).
    def __init__(self):
        self.buf = bytearray(_ANSWERS_MAX)
        self.n = 0
        self.sticky = bytearray(_ANSWERS_MAX)
        self.ns = 0
        self.dropped = 0

    def add(self, cid, b0=None, b1=None, sticky=False):
        size = 1 + (b0 is not None) + (b1 is not None)
        if self.n + self.ns + size > _ANSWERS_MAX:
            self.dropped += 1
            return
        buf = self.sticky if sticky else self.buf
        o = self.ns if sticky else self.n
        buf[o] = cid
        if b0 is not None:
            buf[o + 1] = b0
        if b1 is not None:
            buf[o + 2] = b1
        if sticky:
            self.ns += size
        else:
            self.n += size

    def length(self):
        return self.n + self.ns

    def copy_into(self, dst, off):
        # writes sticky then one-shot answers at dst[off:]; returns the length written
        for i in range(self.ns):
            dst[off + i] = self.sticky[i]
        for i in range(self.n):
            dst[off + self.ns + i] = self.buf[i]
        return self.ns + self.n

    def sent(self, k):
        # the first k bytes of one-shot answers went out: drop them (answers queued since stay); sticky
        # ones wait for a downlink
        if k >= self.n:
            self.n = 0
            return
        b = self.buf
        for i in range(self.n - k):
            b[i] = b[k + i]
        self.n -= k

    def downlink_received(self):
        self.ns = 0


class Context:
    # What the MAC command handlers may read and write besides the plan.
    def __init__(self):
        self.battery = 255         # DevStatusAns: 0 external power, 1..254 level, 255 unknown
        self.snr = 0               # SNR (dB) of the frame being processed
        self.link_margin = None    # LinkCheckAns: (margin dB, gateway count)
        self.device_time = None    # DeviceTimeAns: (GPS seconds, fraction /256)
        self.unknown = 0
        self.truncated = 0
        self.rejected = 0          # commands answered with a NACK bit


def process(data, n, plan, answers, ctx, off=0):
    """Walks data[off:off+n]: changes `plan`, queues answers, counts in `ctx`; returns the number of commands
    handled (bysans.lorawan.macparse)."""
    from .macparse import process as walk

    return walk(data, n, plan, answers, ctx, off)
