"""Semtech SX1262 at command level (datasheet DS.SX1261-2 rev 2.1, §13): the opcodes a LoRa driver uses,
the data buffer, IRQ status with its masks and DIO1, BUSY, NRESET, and frames to and from the simulated air
(air.PacketForwarder).

A command is the MOSI bytes of one NSS-low period; answers (status, registers, buffer, IRQ) are clocked out
as the bytes come in, and the command acts at NSS's rising edge, as on the chip. BUSY reads high while
NRESET is low, for a few reads after a reset, calibration or wake-up, and while the chip sleeps; a command
sent while BUSY is high is ignored and counted in `errors["busy"]`.
"""

from __future__ import annotations

import logging

from .air import PacketForwarder, Receiver, toa_ms
from .base import SpiDevice

SET_SLEEP, SET_STANDBY, SET_FS, SET_TX, SET_RX = 0x84, 0x80, 0xC1, 0x83, 0x82
WRITE_REGISTER, READ_REGISTER, WRITE_BUFFER, READ_BUFFER = 0x0D, 0x1D, 0x0E, 0x1E
SET_DIO_IRQ_PARAMS, GET_IRQ_STATUS, CLEAR_IRQ_STATUS = 0x08, 0x12, 0x02
SET_DIO2_RF_SWITCH, SET_DIO3_TCXO, CALIBRATE, CALIBRATE_IMAGE = 0x9D, 0x97, 0x89, 0x98
SET_RF_FREQUENCY, SET_PACKET_TYPE, GET_PACKET_TYPE, SET_TX_PARAMS = 0x86, 0x8A, 0x11, 0x8E
SET_MODULATION_PARAMS, SET_PACKET_PARAMS, SET_BUFFER_BASE = 0x8B, 0x8C, 0x8F
GET_STATUS, GET_RX_BUFFER_STATUS, GET_PACKET_STATUS = 0xC0, 0x13, 0x14
GET_DEVICE_ERRORS, CLEAR_DEVICE_ERRORS, SET_REGULATOR_MODE, SET_PA_CONFIG = 0x17, 0x07, 0x96, 0x95

log = logging.getLogger("fleet.sim.radio")

IRQ_TX_DONE, IRQ_RX_DONE, IRQ_PREAMBLE, IRQ_SYNC, IRQ_HEADER_VALID = 0x1, 0x2, 0x4, 0x8, 0x10
IRQ_TIMEOUT = 0x200
BW_KHZ = {0x04: 125, 0x05: 250, 0x06: 500}
MODE_BITS = {"sleep": 0, "stdby": 2, "fs": 4, "rx": 5, "tx": 6}
BUSY_READS = 2  # BUSY reads high this many times after a reset, calibration or wake-up
XOSC_START_ERR = 0x20


class SX1262(SpiDevice):
    kind = "sx1262"

    def __init__(self, world, *, nss: int, busy: int, rst: int | None = None, dio1: int | None = None,
                 clock=None, name: str = "vb", forwarder=None, air: PacketForwarder | None = None,
                 rssi_dbm: int = -60, snr_db: float = 9.0, **options):
        super().__init__(world, nss=nss, **options)
        self.clock = clock or world.clock
        self.air = air or PacketForwarder(self.clock, forwarder, name=name, rssi_dbm=rssi_dbm, snr_db=snr_db)
        self.busy_pin, self.rst_pin, self.dio1_pin = busy, rst, dio1
        self.pins.drive(busy, self._busy_level)
        if dio1 is not None:
            self.pins.drive(dio1, self._dio1_level)
        if rst is not None:
            self.pins.watch(rst, lambda level: self.reset() if not level else None)
        self.errors = {"busy": 0, "unknown_opcode": 0, "not_lora": 0}
        self.receiver = Receiver(self.air)
        self.reset()

    # ---- state --------------------------------------------------------------------------------------
    def reset(self):
        self.regs = bytearray(0x1000)
        self.regs[0x0740:0x0742] = b"\x14\x24"  # private sync word after reset
        self.regs[0x0736] = 0x0D
        self.regs[0x0889] = 0x04
        self.buffer = bytearray(256)
        self.mode = "stdby"
        self.packet_type = 0  # GFSK after reset
        self.irq = 0
        self.irq_mask = self.dio1_mask = 0
        self.freq_hz = 915_000_000
        self.sf, self.bw_khz, self.cr, self.ldro = 7, 125, 1, 0
        self.preamble, self.implicit, self.payload_len, self.crc, self.invert_iq = 8, False, 255, True, False
        self.tx_base = self.rx_base = 0
        self.power_dbm = 14
        self.config = {"tcxo_mv": 0, "tcxo_delay_us": 0, "dio2_rf_switch": False, "dcdc": False,
                       "pa_config": None, "calibrated": 0, "image_calibrated": None}
        self.device_errors = XOSC_START_ERR  # no TCXO supply yet: the 32 MHz clock did not start
        self.rx_len = self.rx_start = 0
        self.pkt_rssi, self.pkt_snr = 0, 0
        self._busy_reads = BUSY_READS
        self._mosi = bytearray()
        self._ignored = False
        self._tx_end = None
        self._tx_frame = b""
        if hasattr(self, "receiver"):
            self.receiver.stop()

    @property
    def sync_word(self) -> int:
        return self.regs[0x0740] << 8 | self.regs[0x0741]

    def _busy_level(self) -> int:
        if self.rst_pin is not None and self.pins.level(self.rst_pin, 1) == 0:
            return 1
        if self.mode == "sleep":
            return 1
        if self._busy_reads > 0:
            self._busy_reads -= 1
            return 1
        return 0

    def _dio1_level(self) -> int:
        self.tick()
        return 1 if self.irq & self.dio1_mask else 0

    def _status(self) -> int:
        return MODE_BITS.get(self.mode, 2) << 4

    def _raise(self, bits: int):
        self.irq |= bits & self.irq_mask

    # ---- time and the air ------------------------------------------------------------------------------
    def tick(self):
        now = self.clock.now_ms()
        if self.mode == "tx" and self._tx_end is not None and now >= self._tx_end:
            self.mode = "stdby"
            self.receiver.tx_end = self._tx_end
            self._raise(IRQ_TX_DONE)
            if self.sync_word == 0x3444 and not self.invert_iq:  # what a LoRaWAN gateway demodulates
                self.air.uplink(self._tx_frame, freq_hz=self.freq_hz, sf=self.sf, bw_khz=self.bw_khz,
                                end_ms=self._tx_end, crc=self.crc)
            self._tx_end = None
        if self.mode != "rx":
            return
        # RX continuous (SetRx 0xFFFFFF) stays in RX after each packet; RX with a timeout ends with its packet
        # or the timeout. A private sync word catches no LoRaWAN downlink.
        if not self.receiver.run(now, freq_hz=self.freq_hz, sf=self.sf, bw_khz=self.bw_khz,
                                 iq_inverted=self.invert_iq, on_header=self._header, on_done=self._done,
                                 deaf=self.sync_word != 0x3444):
            self.mode = "stdby"
            if not self.irq & IRQ_RX_DONE:
                self._raise(IRQ_TIMEOUT)

    def _header(self, dl):
        self._raise(IRQ_PREAMBLE | IRQ_SYNC | IRQ_HEADER_VALID)

    def _done(self, dl):
        if self.irq & IRQ_RX_DONE:
            self.receiver.stats["overwritten"] += 1  # the last packet was not read (or not cleared) in time
        n = min(len(dl.data), 255)
        for i in range(n):
            self.buffer[(self.rx_base + i) & 0xFF] = dl.data[i]
        self.rx_len, self.rx_start = n, self.rx_base
        self.pkt_rssi, self.pkt_snr = self.air.rssi_dbm, self.air.snr_db
        self._raise(IRQ_RX_DONE)

    # ---- SPI ----------------------------------------------------------------------------------------
    def select(self):
        self._mosi = bytearray()
        self._ignored = self._busy_level() == 1 and self.mode != "sleep"
        if self.mode == "sleep":  # NSS falling edge wakes the chip
            self.mode = "stdby"
            self._busy_reads = BUSY_READS
            self._ignored = True
        if self._ignored:
            self.errors["busy"] += 1

    def transfer(self, mosi: bytes) -> bytes:
        self.air.start()
        self.tick()
        out = bytearray()
        for b in mosi:
            out.append(self._miso(len(self._mosi)))
            self._mosi.append(b)
        return bytes(out)

    def _miso(self, i: int) -> int:
        m = self._mosi
        if i == 0 or self._ignored:
            return self._status()
        op = m[0]
        if op == READ_REGISTER:
            return self._status() if i < 4 else self.regs[((m[1] << 8 | m[2]) + i - 4) & 0xFFF]
        if op == READ_BUFFER:
            return self._status() if i < 3 else self.buffer[(m[1] + i - 3) & 0xFF]
        answers = {
            GET_IRQ_STATUS: (self._status(), self.irq >> 8, self.irq & 0xFF),
            GET_RX_BUFFER_STATUS: (self._status(), self.rx_len, self.rx_start),
            GET_PACKET_STATUS: (self._status(), min(255, -2 * int(self.pkt_rssi)), int(self.pkt_snr * 4) & 0xFF,
                                min(255, -2 * int(self.pkt_rssi))),
            GET_DEVICE_ERRORS: (self._status(), self.device_errors >> 8, self.device_errors & 0xFF),
            GET_PACKET_TYPE: (self._status(), self.packet_type),
        }.get(op)
        if answers is not None and i - 1 < len(answers):
            return answers[i - 1]
        return self._status()

    def deselect(self):
        if self._ignored or not self._mosi:
            return
        self._execute(bytes(self._mosi))

    def _execute(self, m: bytes):
        op, a = m[0], m[1:]
        now = self.clock.now_ms()
        if op in (SET_STANDBY, SET_SLEEP, SET_FS, SET_TX, SET_RX):
            self.receiver.stop()  # any change of mode ends a reception (SetRx restarts it)
            if self.mode == "tx":  # a transmission cut short
                self.receiver.tx_end = now
        if op == SET_STANDBY:
            self.mode = "stdby"
            self._tx_end = None
        elif op == SET_SLEEP:
            self.mode = "sleep"
            self._tx_end = None
        elif op == SET_FS:
            self.mode = "fs"
        elif op == WRITE_REGISTER and len(a) >= 3:
            addr = a[0] << 8 | a[1]
            for i, v in enumerate(a[2:]):
                self.regs[(addr + i) & 0xFFF] = v
        elif op == WRITE_BUFFER and len(a) >= 1:
            for i, v in enumerate(a[1:]):
                self.buffer[(a[0] + i) & 0xFF] = v
        elif op == SET_DIO_IRQ_PARAMS and len(a) >= 4:
            self.irq_mask = a[0] << 8 | a[1]
            self.dio1_mask = a[2] << 8 | a[3]
        elif op == CLEAR_IRQ_STATUS and len(a) >= 2:
            self.irq &= ~(a[0] << 8 | a[1])
        elif op == SET_DIO2_RF_SWITCH and a:
            self.config["dio2_rf_switch"] = bool(a[0] & 1)
        elif op == SET_DIO3_TCXO and len(a) >= 4:
            self.config["tcxo_mv"] = (1600, 1700, 1800, 2200, 2400, 2700, 3000, 3300)[a[0] & 7]
            self.config["tcxo_delay_us"] = (a[1] << 16 | a[2] << 8 | a[3]) * 15625 // 1000
        elif op == CALIBRATE:
            self.config["calibrated"] += 1
            if self.config["tcxo_mv"]:
                self.device_errors &= ~XOSC_START_ERR
            self._busy_reads = BUSY_READS
        elif op == CALIBRATE_IMAGE and len(a) >= 2:
            self.config["image_calibrated"] = (a[0] * 4, a[1] * 4)  # MHz
        elif op == CLEAR_DEVICE_ERRORS:
            self.device_errors = 0 if self.config["tcxo_mv"] else self.device_errors
        elif op == SET_REGULATOR_MODE and a:
            self.config["dcdc"] = bool(a[0] & 1)
        elif op == SET_PA_CONFIG and len(a) >= 4:
            self.config["pa_config"] = tuple(a[:4])
        elif op == SET_RF_FREQUENCY and len(a) >= 4:
            reg = int.from_bytes(a[:4], "big")
            self.freq_hz = (reg * 15625 + 8192) // 16384
        elif op == SET_PACKET_TYPE and a:
            self.packet_type = a[0]
        elif op == SET_TX_PARAMS and len(a) >= 2:
            self.power_dbm = a[0] - 256 if a[0] > 127 else a[0]
        elif op == SET_MODULATION_PARAMS and len(a) >= 4:
            self.sf, self.bw_khz, self.cr, self.ldro = a[0], BW_KHZ.get(a[1], 0), a[2], a[3]
        elif op == SET_PACKET_PARAMS and len(a) >= 6:
            self.preamble = a[0] << 8 | a[1]
            self.implicit, self.payload_len, self.crc, self.invert_iq = bool(a[2]), a[3], bool(a[4]), bool(a[5])
        elif op == SET_BUFFER_BASE and len(a) >= 2:
            self.tx_base, self.rx_base = a[0], a[1]
        elif op == SET_TX:
            if self.packet_type != 1 or not self.bw_khz:
                self.errors["not_lora"] += 1
                return
            n = self.payload_len
            self._tx_frame = bytes(self.buffer[(self.tx_base + i) & 0xFF] for i in range(n))
            self.mode = "tx"
            self._tx_end = now + toa_ms(n, self.sf, self.bw_khz, crc=self.crc)
        elif op == SET_RX and len(a) >= 3:
            if self.packet_type != 1 or not self.bw_khz:
                self.errors["not_lora"] += 1
                return
            t = a[0] << 16 | a[1] << 8 | a[2]
            self.mode = "rx"
            # 0: RX single with no timeout; 0xFFFFFF: RX continuous (§13.1.4)
            self.receiver.start(now, None if t in (0, 0xFFFFFF) else now + t * 15.625 / 1000, single=t != 0xFFFFFF)
            log.debug("sx1262: RX on %d SF%d BW%d at %d", self.freq_hz, self.sf, self.bw_khz, now)
        elif op in (READ_REGISTER, READ_BUFFER, GET_IRQ_STATUS, GET_RX_BUFFER_STATUS, GET_PACKET_STATUS,
                    GET_STATUS, GET_DEVICE_ERRORS, GET_PACKET_TYPE, 0x15, 0x10, 0x00):
            pass
        else:
            self.errors["unknown_opcode"] += 1
