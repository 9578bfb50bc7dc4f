"""Semtech SX1276 at register level (datasheet rev 7, §4.1 LoRa modem, §6.4 registers): the FIFO with its
address pointer and base addresses, RegOpMode (LongRangeMode changes only in sleep), frequency, modem
config, IQ inversion, IRQ flags with their mask, DIO0 mapping, NRESET, and frames to and from the simulated
air (air.PacketForwarder).

An SPI access is the address byte (bit 7 set for a write) and data bytes, auto-incrementing the address
except at RegFifo, which reads or writes the FIFO at RegFifoAddrPtr and advances it.
"""

from __future__ import annotations

from .air import PacketForwarder, Receiver, toa_ms
from .base import SpiDevice

FIFO, OP_MODE, FRF_MSB, FIFO_ADDR_PTR, FIFO_TX_BASE, FIFO_RX_BASE = 0x00, 0x01, 0x06, 0x0D, 0x0E, 0x0F
FIFO_RX_CURRENT, IRQ_FLAGS_MASK, IRQ_FLAGS, RX_NB_BYTES, MODEM_STAT = 0x10, 0x11, 0x12, 0x13, 0x18
PKT_SNR, PKT_RSSI, MODEM_CONFIG1, MODEM_CONFIG2, SYMB_TIMEOUT_LSB = 0x19, 0x1A, 0x1D, 0x1E, 0x1F
PAYLOAD_LENGTH, MODEM_CONFIG3, INVERT_IQ, SYNC_WORD, INVERT_IQ2 = 0x22, 0x26, 0x33, 0x39, 0x3B
DIO_MAPPING1, VERSION = 0x40, 0x42

IRQ_RX_TIMEOUT, IRQ_RX_DONE, IRQ_CRC_ERR, IRQ_VALID_HEADER, IRQ_TX_DONE = 0x80, 0x40, 0x20, 0x10, 0x08
MODE_SLEEP, MODE_STDBY, MODE_TX, MODE_RX_CONTINUOUS, MODE_RX_SINGLE = 0, 1, 3, 5, 6
BW_KHZ = {7: 125, 8: 250, 9: 500}


class SX1276(SpiDevice):
    kind = "sx1276"

    def __init__(self, world, *, nss: int, rst: int | None = None, dio0: int | None = None,
                 dio1: int | None = None, clock=None, name: str = "vb", forwarder=None,
                 air: PacketForwarder | None = None, rssi_dbm: int = -60, snr_db: float = 9.0, **options):
        super().__init__(world, nss=nss, **options)
        self.clock = clock or world.clock
        self.air = air or PacketForwarder(self.clock, forwarder, name=name, rssi_dbm=rssi_dbm, snr_db=snr_db)
        self.rst_pin = rst
        if dio0 is not None:
            self.pins.drive(dio0, self._dio0_level)
        if dio1 is not None:
            self.pins.drive(dio1, self._dio1_level)
        if rst is not None:
            self.pins.watch(rst, lambda level: self.reset() if not level else None)
        self.errors = {"lora_bit_outside_sleep": 0, "not_lora": 0}
        self.receiver = Receiver(self.air)
        self.reset()

    def reset(self):
        self.regs = bytearray(0x80)
        # power-on defaults (§6.4) of what matters here: FSK standby, 434 MHz, version 0x12
        self.regs[OP_MODE] = 0x09
        self.regs[FRF_MSB:FRF_MSB + 3] = b"\x6c\x80\x00"
        self.regs[FIFO_RX_BASE] = 0x00
        self.regs[FIFO_TX_BASE] = 0x80
        self.regs[MODEM_CONFIG1] = 0x72
        self.regs[MODEM_CONFIG2] = 0x70
        self.regs[SYMB_TIMEOUT_LSB] = 0x64
        self.regs[0x21] = 0x08
        self.regs[PAYLOAD_LENGTH] = 0x01
        self.regs[INVERT_IQ] = 0x27
        self.regs[SYNC_WORD] = 0x12
        self.regs[INVERT_IQ2] = 0x1D
        self.regs[VERSION] = 0x12
        self.fifo = bytearray(256)
        self._addr = None
        self._write = False
        self._tx_end = None
        self._tx_frame = b""
        self._tx_settings = None
        self._rx_ptr = 0
        if hasattr(self, "receiver"):
            self.receiver.stop()

    # ---- decoded settings ----------------------------------------------------------------------------
    @property
    def lora(self) -> bool:
        return bool(self.regs[OP_MODE] & 0x80)

    @property
    def mode(self) -> int:
        return self.regs[OP_MODE] & 0x07

    @property
    def freq_hz(self) -> int:
        frf = int.from_bytes(self.regs[FRF_MSB:FRF_MSB + 3], "big")
        return (frf * 15625 + 128) // 256

    @property
    def sf(self) -> int:
        return self.regs[MODEM_CONFIG2] >> 4

    @property
    def bw_khz(self) -> int:
        return BW_KHZ.get(self.regs[MODEM_CONFIG1] >> 4, 0)

    @property
    def crc(self) -> bool:
        return bool(self.regs[MODEM_CONFIG2] & 0x04)

    @property
    def rx_iq_inverted(self) -> bool:
        return bool(self.regs[INVERT_IQ] & 0x40) and self.regs[INVERT_IQ2] == 0x19

    @property
    def tx_iq_normal(self) -> bool:
        return bool(self.regs[INVERT_IQ] & 0x01) and self.regs[INVERT_IQ2] == 0x1D

    def _raise(self, bits: int):
        self.regs[IRQ_FLAGS] |= bits & ~self.regs[IRQ_FLAGS_MASK]

    def _dio0_level(self) -> int:
        self.tick()
        mapping = self.regs[DIO_MAPPING1] >> 6
        bit = {0: IRQ_RX_DONE, 1: IRQ_TX_DONE}.get(mapping, 0)
        return 1 if self.regs[IRQ_FLAGS] & bit else 0

    def _dio1_level(self) -> int:
        self.tick()
        mapping = (self.regs[DIO_MAPPING1] >> 4) & 3
        return 1 if mapping == 0 and self.regs[IRQ_FLAGS] & IRQ_RX_TIMEOUT else 0

    def _set_mode(self, value: int):
        old = self.regs[OP_MODE]
        if (value ^ old) & 0x80 and old & 0x07 != MODE_SLEEP:
            self.errors["lora_bit_outside_sleep"] += 1
            value = (value & 0x7F) | (old & 0x80)
        self.regs[OP_MODE] = value
        mode = value & 0x07
        now = self.clock.now_ms()
        if old & 0x07 == MODE_TX and self._tx_end is not None:  # a transmission cut short
            self.receiver.tx_end = now
        self._tx_end = None if mode != MODE_TX else self._tx_end
        if mode not in (MODE_RX_CONTINUOUS, MODE_RX_SINGLE) or not self.lora:
            self.receiver.stop()
        if not self.lora:
            if mode in (MODE_TX, MODE_RX_CONTINUOUS, MODE_RX_SINGLE):
                self.errors["not_lora"] += 1
            return
        if mode == MODE_TX:
            n = self.regs[PAYLOAD_LENGTH]
            base = self.regs[FIFO_TX_BASE]
            self._tx_frame = bytes(self.fifo[(base + i) & 0xFF] for i in range(n))
            self._tx_settings = (self.freq_hz, self.sf, self.bw_khz, self.crc)
            self._tx_end = now + toa_ms(n, self.sf, self.bw_khz, crc=self.crc)
        elif mode in (MODE_RX_CONTINUOUS, MODE_RX_SINGLE) and (old & 0x07) != mode:
            # entering RX (a write of the same RX mode changes nothing): each packet is written on from
            # RegFifoRxBaseAddr, one after the other in RXCONT (the datasheet: status describes the last one)
            self._rx_ptr = self.regs[FIFO_RX_BASE]
            until = None
            if mode == MODE_RX_SINGLE:
                symbols = (self.regs[MODEM_CONFIG2] & 3) << 8 | self.regs[SYMB_TIMEOUT_LSB]
                until = now + symbols * (1 << self.sf) / self.bw_khz
            self.receiver.start(now, until, single=mode == MODE_RX_SINGLE)

    # ---- time and the air ------------------------------------------------------------------------------
    def tick(self):
        now = self.clock.now_ms()
        mode = self.mode
        if mode == MODE_TX and self._tx_end is not None and now >= self._tx_end:
            self.regs[OP_MODE] = (self.regs[OP_MODE] & 0xF8) | MODE_STDBY
            self.receiver.tx_end = self._tx_end
            self._raise(IRQ_TX_DONE)
            freq, sf, bw, crc = self._tx_settings
            if self.regs[SYNC_WORD] == 0x34 and self.tx_iq_normal:
                self.air.uplink(self._tx_frame, freq_hz=freq, sf=sf, bw_khz=bw, end_ms=self._tx_end, crc=crc)
            self._tx_end = None
            return
        if mode not in (MODE_RX_CONTINUOUS, MODE_RX_SINGLE) or not self.lora:
            return
        # a private sync word hears no LoRaWAN downlink (deaf: only RX single's timeout runs)
        if not self.receiver.run(now, freq_hz=self.freq_hz, sf=self.sf, bw_khz=self.bw_khz,
                                 iq_inverted=self.rx_iq_inverted, on_header=self._header, on_done=self._done,
                                 deaf=self.regs[SYNC_WORD] != 0x34):
            self.regs[OP_MODE] = (self.regs[OP_MODE] & 0xF8) | MODE_STDBY
            if not self.regs[IRQ_FLAGS] & IRQ_RX_DONE:
                self._raise(IRQ_RX_TIMEOUT)

    def _header(self, dl):
        self._raise(IRQ_VALID_HEADER)

    def _done(self, dl):
        if self.regs[IRQ_FLAGS] & IRQ_RX_DONE:
            self.receiver.stats["overwritten"] += 1  # the last packet was not read (or not cleared) in time
        n = min(len(dl.data), 255)
        base = self._rx_ptr
        for i in range(n):
            self.fifo[(base + i) & 0xFF] = dl.data[i]
        self._rx_ptr = (base + n) & 0xFF
        self.regs[FIFO_RX_CURRENT] = base
        self.regs[RX_NB_BYTES] = n
        self.regs[PKT_SNR] = int(self.air.snr_db * 4) & 0xFF
        self.regs[PKT_RSSI] = max(0, min(255, int(self.air.rssi_dbm) + 157))
        self._raise(IRQ_RX_DONE)

    # ---- SPI ----------------------------------------------------------------------------------------
    def select(self):
        self._addr = None

    def transfer(self, mosi: bytes) -> bytes:
        self.air.start()
        self.tick()
        out = bytearray()
        for b in mosi:
            if self._addr is None:
                self._write = bool(b & 0x80)
                self._addr = b & 0x7F
                out.append(0)
                continue
            if self._write:
                out.append(0)
                self._write_reg(self._addr, b)
            else:
                out.append(self._read_reg(self._addr))
            if self._addr != FIFO:
                self._addr = (self._addr + 1) & 0x7F
        return bytes(out)

    def _read_reg(self, reg: int) -> int:
        if reg == FIFO:
            ptr = self.regs[FIFO_ADDR_PTR]
            self.regs[FIFO_ADDR_PTR] = (ptr + 1) & 0xFF
            return self.fifo[ptr]
        return self.regs[reg]

    def _write_reg(self, reg: int, value: int):
        if reg == FIFO:
            ptr = self.regs[FIFO_ADDR_PTR]
            self.fifo[ptr] = value
            self.regs[FIFO_ADDR_PTR] = (ptr + 1) & 0xFF
        elif reg == OP_MODE:
            self._set_mode(value)
        elif reg == IRQ_FLAGS:
            self.regs[IRQ_FLAGS] &= ~value & 0xFF
        elif reg in (VERSION, FIFO_RX_CURRENT, RX_NB_BYTES, MODEM_STAT, PKT_SNR, PKT_RSSI):
            pass  # read-only
        else:
            self.regs[reg] = value
