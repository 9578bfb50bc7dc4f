# The chip-independent part of the LoRa drivers: the LoRaWAN radio interface (bysans/lorawan/radio.py)
# built on a few chip primitives, with every wait bounded. Chip subclasses (sx1262.py, sx1276.py) provide:
#   _standby()                               stop whatever the chip does (TX/RX) and idle (waking it if asleep)
#   _sleep()                                 sleep, configuration retained
#   _configure(freq_hz, sf, bw_khz, n, rx)   LoRa, CR 4/5, preamble 8, explicit header; rx: IQ inverted and
#                                            no payload CRC (downlink), else IQ normal and CRC on (uplink)
#   _start_tx(frame, n, power_dbm)           load the FIFO/buffer and start sending
#   _start_rx()                              receive continuously until _standby(): the chip stays in RX after
#                                            each packet and keeps the last one (its FIFO/buffer, RxDone)
#   _poll() -> flags                         F_TX_DONE | F_RX_DONE | F_HEADER | F_CRC_ERR, cleared by reading
#   _read_packet(buf) -> n                   copy the frame received into buf; sets last_rssi/last_snr
# Receive windows use the chip's continuous RX with the timeout kept here, on the clock passed in: a window is
# "a preamble (valid header) arrived before timeout_ms", and then the frame's end is awaited for at most
# the time on air of a 255-byte frame. Polling asks the chip (or its DIO line) every `poll_ms`.
# Class C (listen() then take()): the chip is put in continuous RX once and left there; each take() collects
# the frame the chip finished meanwhile, so a frame that ends while the caller works on the last one is not
# lost (the chip holds one: a second one ending before the first is read overwrites it, as on hardware).
from micropython import const

from bysans.lorawan import region

from .errors import RadioConfigError, RadioTimeout

F_TX_DONE = const(1)
F_RX_DONE = const(2)
F_HEADER = const(4)
F_CRC_ERR = const(8)

SF_MIN = const(6)
SF_MAX = const(12)
BANDWIDTHS_KHZ = (125, 250, 500)
TX_MARGIN_MS = const(200)


class LoRaRadio:
    def __init__(self, clock, poll_ms=1):
        self._clock = clock
        self.poll_ms = poll_ms
        self.last_rssi = 0
        self.last_snr = 0
        self.tx_frames = 0
        self.rx_frames = 0
        self.rx_crc_errors = 0
        self._frame_ms = 0

    @staticmethod
    def _check(sf, bw_khz, n):
        if not SF_MIN <= sf <= SF_MAX or bw_khz not in BANDWIDTHS_KHZ:
            raise RadioConfigError("SF%d BW%d is not a LoRa setting" % (sf, bw_khz))
        if not 0 < n <= 255:
            raise RadioConfigError("a LoRa frame is 1..255 bytes")

    def sleep(self):
        # the chip's sleep, its configuration kept (after a class C session; before the MCU sleeps): the next
        # send() or receive() wakes it
        self._sleep()

    def send(self, frame, freq_hz, sf, bw_khz, power_dbm):
        n = len(frame)
        self._check(sf, bw_khz, n)
        self._standby()
        self._configure(freq_hz, sf, bw_khz, n, False)
        c = self._clock
        limit = region.time_on_air_us(n, sf, bw_khz) // 1000 + TX_MARGIN_MS
        self._start_tx(frame, n, power_dbm)
        t0 = c.ticks_ms()
        while not self._poll() & F_TX_DONE:
            if c.ticks_diff(c.ticks_ms(), t0) > limit:
                self._standby()
                raise RadioTimeout("no TxDone within %d ms" % limit)
            c.sleep_ms(self.poll_ms)
        self._standby()
        self.tx_frames += 1

    def listen(self, freq_hz, sf, bw_khz):
        # class C: continuous RX (IQ inverted, no payload CRC) until sleep(), send() or receive()
        self._check(sf, bw_khz, 1)
        self._standby()
        self._configure(freq_hz, sf, bw_khz, 255, True)
        self._frame_ms = region.time_on_air_us(255, sf, bw_khz, crc=False) // 1000 + 1
        self._start_rx()

    def take(self, buf, timeout_ms):
        # after listen(): the length of the next frame received (written to buf), or 0 when none ended within
        # timeout_ms (or, for a frame whose header came by then, within its longest time on air). The radio
        # stays in RX either way.
        c = self._clock
        t0 = c.ticks_ms()
        limit = timeout_ms
        while True:
            f = self._poll()
            waited = c.ticks_diff(c.ticks_ms(), t0)
            if f & F_RX_DONE:
                if not f & F_CRC_ERR:
                    n = self._read_packet(buf)
                    self.rx_frames += 1
                    return n
                self.rx_crc_errors += 1
            elif f & F_HEADER and waited + self._frame_ms > limit:
                limit = waited + self._frame_ms
            if waited > limit:
                return 0
            c.sleep_ms(self.poll_ms)

    def receive(self, freq_hz, sf, bw_khz, timeout_ms, buf):
        self._check(sf, bw_khz, 1)
        self._standby()
        self._configure(freq_hz, sf, bw_khz, 255, True)
        c = self._clock
        frame_ms = region.time_on_air_us(255, sf, bw_khz, crc=False) // 1000 + 1
        self._start_rx()
        t0 = c.ticks_ms()
        header = False
        try:
            while True:
                f = self._poll()
                if f & F_RX_DONE:
                    if f & F_CRC_ERR:
                        self.rx_crc_errors += 1
                        return 0
                    n = self._read_packet(buf)
                    self.rx_frames += 1
                    return n
                if f & F_HEADER:
                    header = True
                waited = c.ticks_diff(c.ticks_ms(), t0)
                if waited > (timeout_ms + frame_ms if header else timeout_ms):
                    return 0
                c.sleep_ms(self.poll_ms)
        finally:
            self._standby()
