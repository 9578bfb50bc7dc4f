# What Sensirion's I2C sensors share (SCD4x datasheet §3.3, SPS30 datasheet §6.2): 16-bit commands sent
# big-endian, and data as 16-bit big-endian words each followed by a CRC-8 (polynomial 0x31, init 0xFF, no
# final XOR; check value CRC(0xBEEF) = 0x92).
from micropython import const
from array import array

from bysans.drivers.errors import CrcError, missing

_CRC_POLY = const(0x31)
_CRC_INIT = const(0xFF)


def crc8(buf, start=0, n=2):
    """Sensirion CRC-8 over buf[start:start+n]."""
    crc = _CRC_INIT
    for i in range(start, start + n):
        crc ^= buf[i]
        for _ in range(8):
            if crc & 0x80:
                crc = ((crc << 1) ^ _CRC_POLY) & 0xFF
            else:
                crc = (crc << 1) & 0xFF
    return crc


class SensirionI2C:
    """Command/word transport. Subclasses set NAME and call _init_transport(i2c, address, max_words)."""

    NAME = "sensirion"

    def _init_transport(self, i2c, address, max_words):
        self._i2c = i2c
        self._addr = address
        self._cmd = bytearray(2)
        self._cmd_arg = bytearray(5)
        self._rx = bytearray(3 * max_words)
        self._rxv = memoryview(self._rx)
        self.words = array("H", [0] * max_words)  # the last words read, CRC-checked

    def _command(self, cmd, arg=None):
        """Sends a command, with one 16-bit argument word (and its CRC) when given."""
        try:
            if arg is None:
                self._cmd[0] = cmd >> 8
                self._cmd[1] = cmd & 0xFF
                self._i2c.writeto(self._addr, self._cmd)
            else:
                b = self._cmd_arg
                b[0] = cmd >> 8
                b[1] = cmd & 0xFF
                b[2] = (arg >> 8) & 0xFF
                b[3] = arg & 0xFF
                b[4] = crc8(b, 2)
                self._i2c.writeto(self._addr, b)
        except OSError as e:
            raise missing(self.NAME, e)

    def _read_words(self, n):
        """Reads n words into self.words, checking each CRC."""
        buf = self._rxv[:3 * n]
        try:
            self._i2c.readfrom_into(self._addr, buf)
        except OSError as e:
            raise missing(self.NAME, e)
        words = self.words
        for i in range(n):
            j = 3 * i
            if crc8(buf, j) != buf[j + 2]:
                raise CrcError(self.NAME, "CRC mismatch in word %d" % i)
            words[i] = (buf[j] << 8) | buf[j + 1]
        return words
