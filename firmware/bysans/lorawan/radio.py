# The seams the MAC is built on. Nothing here touches hardware: the SX1262/SX1276 drivers, the virtual
# board's radio and the tests' fakes implement these shapes.
#
# Radio:
#   send(frame, freq_hz, sf, bw_khz, power_dbm)
#       LoRa, explicit header, CRC on, coding rate 4/5, preamble 8, IQ normal, public sync word (0x34;
#       0x3444 on SX126x). `frame` is bytes-like (a memoryview into the MAC's buffer: copy it if you keep
#       it). Returns once the frame has left the antenna (TX done); raises RadioError on a timeout.
#   receive(freq_hz, sf, bw_khz, timeout_ms, buf) -> int
#       Listens with IQ inverted and no payload CRC (LoRaWAN downlinks). Returns the number of bytes
#       written to `buf` (a bytearray of 255) if a frame's preamble arrived within timeout_ms of the call,
#       0 if none did. Sets `last_rssi` (dBm) and `last_snr` (dB, int) for that frame.
#   listen(freq_hz, sf, bw_khz)
#       Class C: puts the radio in continuous RX with receive()'s settings and leaves it there (until
#       sleep(), send() or receive()); the chip keeps receiving while the caller works.
#   take(buf, timeout_ms) -> int
#       After listen(): the next frame the radio received (the chip holds the last one ended: one not taken
#       before the next one ends is lost, as on the chips), its length written to `buf`; 0 if none ended
#       within timeout_ms. Sets last_rssi/last_snr. The radio stays in RX.
#   sleep()
#       The radio's sleep, its configuration kept; the next send()/receive()/listen() wakes it.
#
# Clock (the board object is one): ticks_ms(), ticks_diff(a, b), sleep_ms(ms).
#
# Store (the app backs it with RTC memory or flash, with a checksum): get(name, default) and
# put(name, value); values are small ints or short bytes. MemoryStore below is the one tests use.
from .errors import LoRaWANError


class RadioError(LoRaWANError):
    pass


class MemoryStore:
    def __init__(self, data=None):
        self.data = {} if data is None else data
        self.writes = 0

    def get(self, name, default=None):
        return self.data.get(name, default)

    def put(self, name, value):
        self.data[name] = value
        self.writes += 1

    def __repr__(self):
        return "<MemoryStore %d entries>" % len(self.data)
