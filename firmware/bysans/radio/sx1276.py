# Semtech SX1276/77/78/79 (TTGO LoRa32 V2.1, LILYGO T-Beam) at register level over SPI (datasheet rev 7).
# Hardware is passed in: spi, cs/reset pins, optional dio0 (TxDone/RxDone), and the clock. PA_BOOST output,
# as on both boards.
#
#   r = SX1276(spi, cs=pin, reset=pin, dio0=pin, clock=board)
from micropython import const

from .core import F_CRC_ERR, F_HEADER, F_RX_DONE, F_TX_DONE, LoRaRadio
from .errors import RadioMissing

_DEBUG = const(False)

_REG_FIFO = const(0x00)
_REG_OP_MODE = const(0x01)
_REG_FRF_MSB = const(0x06)
_REG_PA_CONFIG = const(0x09)
_REG_OCP = const(0x0B)
_REG_LNA = const(0x0C)
_REG_FIFO_ADDR_PTR = const(0x0D)
_REG_FIFO_TX_BASE = const(0x0E)
_REG_FIFO_RX_BASE = const(0x0F)
_REG_FIFO_RX_CURRENT = const(0x10)
_REG_IRQ_FLAGS = const(0x12)
_REG_RX_NB_BYTES = const(0x13)
_REG_PKT_SNR = const(0x19)
_REG_PKT_RSSI = const(0x1A)
_REG_MODEM_CONFIG1 = const(0x1D)
_REG_MODEM_CONFIG2 = const(0x1E)
_REG_PREAMBLE_MSB = const(0x20)
_REG_PAYLOAD_LENGTH = const(0x22)
_REG_MAX_PAYLOAD = const(0x23)
_REG_MODEM_CONFIG3 = const(0x26)
_REG_INVERT_IQ = const(0x33)
_REG_SYNC_WORD = const(0x39)
_REG_INVERT_IQ2 = const(0x3B)
_REG_DIO_MAPPING1 = const(0x40)
_REG_VERSION = const(0x42)
_REG_PA_DAC = const(0x4D)

_LONG_RANGE = const(0x80)
_MODE_SLEEP = const(0)
_MODE_STDBY = const(1)
_MODE_TX = const(3)
_MODE_RX_CONTINUOUS = const(5)

_IRQ_RX_DONE = const(0x40)
_IRQ_CRC_ERR = const(0x20)
_IRQ_VALID_HEADER = const(0x10)
_IRQ_TX_DONE = const(0x08)

_VERSION = const(0x12)
_BW_CODES = {125: 7, 250: 8, 500: 9}
_RESET_MS = const(6)  # §7.2.2: 100 us low, then 5 ms before the chip is ready


class SX1276(LoRaRadio):
    def __init__(self, spi, *, cs, clock, reset=None, dio0=None, poll_ms=1):
        super().__init__(clock, poll_ms)
        self._spi = spi
        self._cs = cs
        self._reset = reset
        self._dio0 = dio0
        self._out = bytearray(2)
        self._in = bytearray(2)
        self._fifo = bytearray(1 + 255)  # address byte, then the frame
        self._fmv = memoryview(self._fifo)
        cs.value(1)
        self._init()

    def __repr__(self):
        return "<SX1276>"

    # --- SPI ----------------------------------------------------------------------------------------
    def _write(self, reg, value):
        o = self._out
        o[0] = reg | 0x80
        o[1] = value
        self._cs.value(0)
        try:
            self._spi.write(o)
        finally:
            self._cs.value(1)

    def _read(self, reg):
        o = self._out
        o[0] = reg & 0x7F
        o[1] = 0
        self._cs.value(0)
        try:
            self._spi.write_readinto(o, self._in)
        finally:
            self._cs.value(1)
        return self._in[1]

    # --- set-up --------------------------------------------------------------------------------------
    def _init(self):
        c = self._clock
        if self._reset is not None:
            self._reset.value(0)
            c.sleep_ms(1)
            self._reset.value(1)
            c.sleep_ms(_RESET_MS)
        v = self._read(_REG_VERSION)
        if v != _VERSION:
            raise RadioMissing("no SX1276 answers on SPI (RegVersion reads 0x%02x, not 0x12)" % v)
        # LongRangeMode can only change in sleep (§4.1.3)
        self._write(_REG_OP_MODE, _MODE_SLEEP)
        self._write(_REG_OP_MODE, _LONG_RANGE | _MODE_SLEEP)
        self._write(_REG_OP_MODE, _LONG_RANGE | _MODE_STDBY)
        if self._read(_REG_OP_MODE) != _LONG_RANGE | _MODE_STDBY:
            raise RadioMissing("SX1276 did not enter LoRa standby")
        self._write(_REG_FIFO_TX_BASE, 0)
        self._write(_REG_FIFO_RX_BASE, 0)
        self._write(_REG_LNA, 0x23)        # max gain, LNA boost on the HF port
        self._write(_REG_SYNC_WORD, 0x34)  # LoRaWAN public network
        self._write(_REG_OCP, 0x2B)        # 100 mA
        self._write(_REG_PREAMBLE_MSB, 0)
        self._write(_REG_PREAMBLE_MSB + 1, 8)
        self._write(_REG_MAX_PAYLOAD, 255)

    # --- chip primitives for LoRaRadio -----------------------------------------------------------------
    def _standby(self):
        self._write(_REG_OP_MODE, _LONG_RANGE | _MODE_STDBY)

    def _sleep(self):
        self._write(_REG_OP_MODE, _LONG_RANGE | _MODE_SLEEP)  # registers kept; a mode write wakes it

    def _configure(self, freq_hz, sf, bw_khz, n, rx):
        # Frf = f * 2^19 / 32 MHz = f * 2^8 / 15625, split so it stays a small int
        q, r = divmod(freq_hz, 15625)
        frf = (q << 8) + (((r << 8) + 7812) // 15625)
        self._write(_REG_FRF_MSB, frf >> 16)
        self._write(_REG_FRF_MSB + 1, (frf >> 8) & 0xFF)
        self._write(_REG_FRF_MSB + 2, frf & 0xFF)
        self._write(_REG_MODEM_CONFIG1, _BW_CODES[bw_khz] << 4 | 1 << 1)        # CR 4/5, explicit header
        self._write(_REG_MODEM_CONFIG2, sf << 4 | (0 if rx else 0x04))          # payload CRC on uplinks
        ldro = 0x08 if (bw_khz == 125 and sf >= 11) else 0
        self._write(_REG_MODEM_CONFIG3, ldro | 0x04)                           # AGC auto
        # IQ: values from Semtech's LoRaMac-node (sx1276.c), normal for TX, inverted for RX
        self._write(_REG_INVERT_IQ, 0x66 if rx else 0x27)
        self._write(_REG_INVERT_IQ2, 0x19 if rx else 0x1D)
        self._write(_REG_PAYLOAD_LENGTH, n)

    def _start_tx(self, frame, n, power_dbm):
        p = power_dbm if power_dbm <= 17 else 17
        if p < 2:
            p = 2
        self._write(_REG_PA_DAC, 0x84)                # +20 dBm mode off
        self._write(_REG_PA_CONFIG, 0x80 | 0x70 | (p - 2))  # PA_BOOST: Pout = 17 - (15 - OutputPower)
        self._write(_REG_FIFO_ADDR_PTR, 0)
        f = self._fifo
        f[0] = _REG_FIFO | 0x80
        f[1:1 + n] = frame
        self._cs.value(0)
        try:
            self._spi.write(self._fmv[:1 + n])
        finally:
            self._cs.value(1)
        self._write(_REG_DIO_MAPPING1, 0x40)          # DIO0 = TxDone
        self._write(_REG_IRQ_FLAGS, 0xFF)
        self._write(_REG_OP_MODE, _LONG_RANGE | _MODE_TX)

    def _start_rx(self):
        self._write(_REG_FIFO_ADDR_PTR, 0)
        self._write(_REG_DIO_MAPPING1, 0x00)          # DIO0 = RxDone
        self._write(_REG_IRQ_FLAGS, 0xFF)
        self._write(_REG_OP_MODE, _LONG_RANGE | _MODE_RX_CONTINUOUS)

    def _poll(self):
        irq = self._read(_REG_IRQ_FLAGS)
        if not irq:
            return 0
        self._write(_REG_IRQ_FLAGS, irq)
        f = 0
        if irq & _IRQ_TX_DONE:
            f |= F_TX_DONE
        if irq & _IRQ_RX_DONE:
            f |= F_RX_DONE
        if irq & _IRQ_VALID_HEADER:
            f |= F_HEADER
        if irq & _IRQ_CRC_ERR:
            f |= F_CRC_ERR
        return f

    def _read_packet(self, buf):
        n = self._read(_REG_RX_NB_BYTES)
        if n > len(buf):
            n = len(buf)
        self._write(_REG_FIFO_ADDR_PTR, self._read(_REG_FIFO_RX_CURRENT))
        f = self._fifo
        f[0] = _REG_FIFO
        self._cs.value(0)
        try:
            self._spi.write_readinto(self._fmv[:1 + n], self._fmv[:1 + n])
        finally:
            self._cs.value(1)
        buf[:n] = self._fmv[1:1 + n]
        s = self._read(_REG_PKT_SNR)
        snr = (s - 256 if s > 127 else s) // 4
        rssi = -157 + self._read(_REG_PKT_RSSI)
        self.last_snr = snr
        self.last_rssi = rssi + snr if snr < 0 else rssi
        return n
