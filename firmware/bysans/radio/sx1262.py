# Semtech SX1262 (Heltec WiFi LoRa 32 V3) at command level over SPI (datasheet DS.SX1261-2, rev 2.1).
# Hardware is passed in: spi (machine.SPI-like), cs/busy/reset/dio1 pins, and the clock (ticks_ms,
# ticks_diff, sleep_ms). Every command waits for BUSY low first, with a timeout (RadioBusy).
#
#   r = SX1262(spi, cs=pin, busy=pin, reset=pin, dio1=pin, clock=board, tcxo_mv=1800, dio2_rf_switch=True)
#   r.send(frame, 868100000, 7, 125, 14); n = r.receive(868100000, 7, 125, 50, buf)
from micropython import const

from .core import F_CRC_ERR, F_HEADER, F_RX_DONE, F_TX_DONE, LoRaRadio
from .errors import RadioBusy, RadioMissing

_DEBUG = const(False)

# opcodes (datasheet §13)
_SET_SLEEP = const(0x84)
_SET_STANDBY = const(0x80)
_SET_TX = const(0x83)
_SET_RX = const(0x82)
_SET_REGULATOR_MODE = const(0x96)
_CALIBRATE = const(0x89)
_CALIBRATE_IMAGE = const(0x98)
_SET_PA_CONFIG = const(0x95)
_WRITE_REGISTER = const(0x0D)
_READ_REGISTER = const(0x1D)
_WRITE_BUFFER = const(0x0E)
_READ_BUFFER = const(0x1E)
_SET_DIO_IRQ_PARAMS = const(0x08)
_GET_IRQ_STATUS = const(0x12)
_CLEAR_IRQ_STATUS = const(0x02)
_SET_DIO2_RF_SWITCH = const(0x9D)
_SET_DIO3_TCXO = const(0x97)
_SET_RF_FREQUENCY = const(0x86)
_SET_PACKET_TYPE = const(0x8A)
_SET_TX_PARAMS = const(0x8E)
_SET_MODULATION_PARAMS = const(0x8B)
_SET_PACKET_PARAMS = const(0x8C)
_SET_BUFFER_BASE = const(0x8F)
_GET_RX_BUFFER_STATUS = const(0x13)
_GET_PACKET_STATUS = const(0x14)
_CLEAR_DEVICE_ERRORS = const(0x07)

# registers
_REG_SYNC_WORD = const(0x0740)      # 2 bytes: 0x3444 public (LoRaWAN), 0x1424 private
_REG_IQ_POLARITY = const(0x0736)    # §15.4 erratum: bit 2
_REG_TX_MODULATION = const(0x0889)  # §15.1 erratum: bit 2
_REG_OCP = const(0x08E7)

# IRQ bits (§13.3.1)
_IRQ_TX_DONE = const(0x0001)
_IRQ_RX_DONE = const(0x0002)
_IRQ_PREAMBLE = const(0x0004)
_IRQ_HEADER_VALID = const(0x0010)
_IRQ_HEADER_ERR = const(0x0020)
_IRQ_CRC_ERR = const(0x0040)
_IRQ_TIMEOUT = const(0x0200)
_IRQ_ALL = const(0x0277)
_IRQ_DIO1 = const(0x0213)           # TxDone | RxDone | HeaderValid | Timeout: DIO1 says "look"

_STDBY_RC = const(0)
_PACKET_TYPE_LORA = const(1)
_BW_CODES = {125: 0x04, 250: 0x05, 500: 0x06}
# DIO3 TCXO supply voltage codes (§13.3.6): 1.6, 1.7, 1.8, 2.2, 2.4, 2.7, 3.0, 3.3 V
_TCXO_MV = (1600, 1700, 1800, 2200, 2400, 2700, 3000, 3300)
_TCXO_DELAY_STEPS = const(320)      # 5 ms in 15.625 us steps: Heltec's TCXO settles well within that
_RX_CONTINUOUS = const(0xFFFFFF)
_BUSY_TIMEOUT_MS = const(100)


class SX1262(LoRaRadio):
    def __init__(self, spi, *, cs, busy, clock, reset=None, dio1=None, tcxo_mv=0, dio2_rf_switch=False,
                 dcdc=False, busy_timeout_ms=_BUSY_TIMEOUT_MS, poll_ms=1):
        super().__init__(clock, poll_ms)
        self._spi = spi
        self._cs = cs
        self._busy = busy
        self._reset = reset
        self._dio1 = dio1
        self.busy_timeout_ms = busy_timeout_ms
        self._out = bytearray(16)        # command bytes
        self._in = bytearray(16)         # status/answer bytes clocked back
        self._outs = [memoryview(self._out)[:n] for n in range(17)]
        self._ins = [memoryview(self._in)[:n] for n in range(17)]
        self._wbuf = bytearray(2 + 255)  # WriteBuffer: opcode, offset, frame
        self._rbuf = bytearray(3 + 255)  # ReadBuffer: opcode, offset, NOP, frame
        self._wmv = memoryview(self._wbuf)
        self._rmv = memoryview(self._rbuf)
        self._asleep = False
        cs.value(1)
        self._init(tcxo_mv, dio2_rf_switch, dcdc)

    def __repr__(self):
        return "<SX1262>"

    # --- SPI and BUSY --------------------------------------------------------------------------------
    def _wait_busy(self):
        c = self._clock
        t0 = c.ticks_ms()
        polls = 0
        while self._busy.value():
            polls += 1
            # both: the time, and enough looks that a slow bus (or a fast simulated clock) cannot fake it
            if polls > 20 and c.ticks_diff(c.ticks_ms(), t0) > self.busy_timeout_ms:
                raise RadioBusy("SX1262 BUSY high for over %d ms" % self.busy_timeout_ms)
            c.sleep_ms(0)  # BUSY is high for microseconds normally; let other work (and time) run

    def _xfer(self, n):
        # sends _out[:n]; the chip's answer lands in _in[:n]
        self._wait_busy()
        self._cs.value(0)
        try:
            self._spi.write_readinto(self._outs[n], self._ins[n])
        finally:
            self._cs.value(1)

    def _cmd(self, op, *args):
        o = self._out
        o[0] = op
        for i in range(len(args)):
            o[1 + i] = args[i]
        self._xfer(1 + len(args))

    def _write_reg(self, addr, value):
        self._cmd(_WRITE_REGISTER, addr >> 8, addr & 0xFF, value)

    def _read_reg(self, addr):
        o = self._out
        o[0] = _READ_REGISTER
        o[1] = addr >> 8
        o[2] = addr & 0xFF
        o[3] = 0
        o[4] = 0
        self._xfer(5)
        return self._in[4]

    # --- set-up --------------------------------------------------------------------------------------
    def _hard_reset(self):
        if self._reset is None:
            return
        self._reset.value(0)
        self._clock.sleep_ms(1)
        self._reset.value(1)
        self._clock.sleep_ms(1)

    def _init(self, tcxo_mv, rf_switch, dcdc):
        self._hard_reset()
        self._cmd(_SET_STANDBY, _STDBY_RC)
        if tcxo_mv:
            code = _TCXO_MV.index(tcxo_mv) if tcxo_mv in _TCXO_MV else 2
            d = _TCXO_DELAY_STEPS
            self._cmd(_SET_DIO3_TCXO, code, d >> 16, (d >> 8) & 0xFF, d & 0xFF)
            # with a TCXO the chip must be recalibrated once it runs (§13.1.12), and its XOSC start
            # error from power-on cleared
            self._cmd(_CALIBRATE, 0x7F)
            self._wait_busy()
            self._cmd(_CLEAR_DEVICE_ERRORS, 0, 0)
        if dcdc:
            self._cmd(_SET_REGULATOR_MODE, 1)
        if rf_switch:
            self._cmd(_SET_DIO2_RF_SWITCH, 1)
        self._cmd(_SET_PACKET_TYPE, _PACKET_TYPE_LORA)
        self._write_reg(_REG_SYNC_WORD, 0x34)
        self._write_reg(_REG_SYNC_WORD + 1, 0x44)
        if self._read_reg(_REG_SYNC_WORD) != 0x34 or self._read_reg(_REG_SYNC_WORD + 1) != 0x44:
            raise RadioMissing("no SX1262 answers on SPI (sync word does not read back)")
        self._cmd(_CALIBRATE_IMAGE, 0xD7, 0xDB)  # 863-870 MHz (§9.2.1)
        self._cmd(_SET_BUFFER_BASE, 0, 0)
        # the two erratum registers, read once: _configure keeps them without reading again
        self._txmod = self._read_reg(_REG_TX_MODULATION)
        self._iqpol = self._read_reg(_REG_IQ_POLARITY)
        self._cmd(_SET_PA_CONFIG, 0x04, 0x07, 0x00, 0x01)  # SX1262, up to +22 dBm (§13.1.14)
        self._write_reg(_REG_OCP, 0x38)  # 140 mA
        m = _IRQ_ALL
        d = _IRQ_DIO1
        self._cmd(_SET_DIO_IRQ_PARAMS, m >> 8, m & 0xFF, d >> 8, d & 0xFF, 0, 0, 0, 0)
        self._cmd(_CLEAR_IRQ_STATUS, 0x03, 0xFF)

    # --- chip primitives for LoRaRadio -----------------------------------------------------------------
    def _standby(self):
        if self._asleep:  # NSS falling edge wakes the chip (datasheet §13.1.1); BUSY then says when it is ready
            self._cs.value(0)
            self._cs.value(1)
            self._asleep = False
        self._cmd(_SET_STANDBY, _STDBY_RC)

    def _sleep(self):
        self._cmd(_SET_SLEEP, 0x04)  # warm start: the configuration is retained (datasheet §13.1.1)
        self._asleep = True

    def _configure(self, freq_hz, sf, bw_khz, n, rx):
        # frequency register: f * 2^25 / 32 MHz = f * 2^14 / 15625, split so it stays a small int
        q, r = divmod(freq_hz, 15625)
        frf = (q << 14) + (((r << 14) + 7812) // 15625)
        self._cmd(_SET_RF_FREQUENCY, frf >> 24, (frf >> 16) & 0xFF, (frf >> 8) & 0xFF, frf & 0xFF)
        ldro = 1 if (bw_khz == 125 and sf >= 11) else 0
        self._cmd(_SET_MODULATION_PARAMS, sf, _BW_CODES[bw_khz], 1, ldro)
        # §15.1: bit 2 of 0x0889 is 0 at 500 kHz, 1 otherwise
        v = self._txmod
        v = (v & 0xFB) if bw_khz == 500 else (v | 0x04)
        if v != self._txmod:
            self._write_reg(_REG_TX_MODULATION, v)
            self._txmod = v
        self._cmd(_SET_PACKET_PARAMS, 0, 8, 0, n, 0 if rx else 1, 1 if rx else 0)
        # §15.4: with inverted IQ, bit 2 of 0x0736 must be 0; with normal IQ, 1
        v = self._iqpol
        v = (v & 0xFB) if rx else (v | 0x04)
        if v != self._iqpol:
            self._write_reg(_REG_IQ_POLARITY, v)
            self._iqpol = v

    def _start_tx(self, frame, n, power_dbm):
        p = power_dbm if power_dbm <= 22 else 22
        if p < -9:
            p = -9
        self._cmd(_SET_TX_PARAMS, p & 0xFF, 0x04)  # ramp 200 us
        w = self._wbuf
        w[0] = _WRITE_BUFFER
        w[1] = 0
        w[2:2 + n] = frame
        self._wait_busy()
        self._cs.value(0)
        try:
            self._spi.write(self._wmv[:2 + n])
        finally:
            self._cs.value(1)
        self._cmd(_CLEAR_IRQ_STATUS, 0x03, 0xFF)
        self._cmd(_SET_TX, 0, 0, 0)

    def _start_rx(self):
        self._cmd(_CLEAR_IRQ_STATUS, 0x03, 0xFF)
        t = _RX_CONTINUOUS
        self._cmd(_SET_RX, t >> 16, (t >> 8) & 0xFF, t & 0xFF)

    def _poll(self):
        if self._dio1 is not None and not self._dio1.value():
            return 0
        self._cmd(_GET_IRQ_STATUS, 0, 0, 0)
        irq = self._in[2] << 8 | self._in[3]
        if not irq:
            return 0
        self._cmd(_CLEAR_IRQ_STATUS, irq >> 8, irq & 0xFF)
        f = 0
        if irq & _IRQ_TX_DONE:
            f |= F_TX_DONE
        if irq & _IRQ_RX_DONE:
            f |= F_RX_DONE
        if irq & (_IRQ_HEADER_VALID | _IRQ_PREAMBLE):
            f |= F_HEADER
        if irq & (_IRQ_CRC_ERR | _IRQ_HEADER_ERR):
            f |= F_CRC_ERR
        return f

    def _read_packet(self, buf):
        self._cmd(_GET_RX_BUFFER_STATUS, 0, 0, 0)
        n = self._in[2]
        start = self._in[3]
        if n > len(buf):
            n = len(buf)
        r = self._rbuf
        r[0] = _READ_BUFFER
        r[1] = start
        r[2] = 0
        self._wait_busy()
        self._cs.value(0)
        try:
            # the bytes after the NOP are don't-care on MOSI: one buffer serves both ways (machine.SPI allows it)
            self._spi.write_readinto(self._rmv[:3 + n], self._rmv[:3 + n])
        finally:
            self._cs.value(1)
        buf[:n] = self._rmv[3:3 + n]
        self._cmd(_GET_PACKET_STATUS, 0, 0, 0, 0)
        self.last_rssi = -(self._in[2] // 2)
        s = self._in[3]
        self.last_snr = (s - 256 if s > 127 else s) // 4
        return n
