"""The ROM serial loader of an ESP32 / ESP32-S3 in download mode, as esptool 5.6 talks to it.

The chip's ROM, and after it esptool's flasher stub when esptool uploads it (MEM_BEGIN/MEM_DATA/MEM_END):
romstub.py recognises esptool's own stub for this chip, byte for byte, greets with "OHAI" and from then on
answers as the stub. Other code sent to RAM and run is not pretended to run: the board says so on the line
and stops answering until it is reset (FOREIGN_CODE), as a chip that ran foreign code would not answer.

Protocol (REFERENCE-2.md §1; esptool `loader.py`): SLIP frames (C0 ... C0, DB DC / DB DD escapes); a
request is `<BBHI` (0, op, size, checksum) + data; a response is `<BBHI` (1, op, size, value) + data + four
status bytes (status 0 ok / 1 failed, error code, 0, 0). Nothing here raises on what arrives over the wire:
a malformed packet, a bad checksum or a write past the flash gets the ROM's error code.

`RomLoader.feed(bytes)` returns a list of actions for the serial port, in order:
`bytes` (to send: a framed response, or text), `("delay", seconds)` (the flash is busy, e.g. erasing),
`("baud", n)` (switch the line's speed, after what was sent before) and `("run",)` (leave download mode and
boot, as FLASH_END does).
"""

import hashlib
import struct
import time
import zlib

from . import chips

HEADER = struct.Struct("<BBHI")  # direction, opcode, data size, checksum (requests) / value (responses)
END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD
MAX_FRAME = 0x4000 + 64  # a FLASH_DATA of the largest block esptool sends, with its headers

# opcodes (esptool ESPLoader.ESP_CMDS)
FLASH_BEGIN, FLASH_DATA, FLASH_END = 0x02, 0x03, 0x04
MEM_BEGIN, MEM_END, MEM_DATA = 0x05, 0x06, 0x07
SYNC, WRITE_REG, READ_REG = 0x08, 0x09, 0x0A
SPI_SET_PARAMS, SPI_ATTACH, READ_FLASH_SLOW, CHANGE_BAUDRATE = 0x0B, 0x0D, 0x0E, 0x0F
FLASH_DEFL_BEGIN, FLASH_DEFL_DATA, FLASH_DEFL_END = 0x10, 0x11, 0x12
SPI_FLASH_MD5, GET_SECURITY_INFO = 0x13, 0x14

# ROM error codes (esptool docs, serial-protocol "ROM Loader Errors")
INVALID_MESSAGE, FAILED_TO_ACT, INVALID_CRC = 0x05, 0x06, 0x07
FLASH_WRITE_ERR, FLASH_READ_ERR, READ_LENGTH_ERR, DEFLATE_ERR = 0x08, 0x09, 0x0A, 0x0B

FOREIGN_CODE = (b"\r\nvirtual board: the code loaded to RAM is not esptool's flasher stub for this chip; a virtual "
                b"board runs no other code and stops here (reset it)\r\n")
SYNC_PAYLOAD = b"\x07\x07\x12\x20" + b"\x55" * 32
SYNC_VALUE = 0x20120707  # the ROM echoes the first word of the SYNC payload as its value
SPIFLASH_RDID = 0x9F
SECTOR, BLOCK, PAGE = 0x1000, 0x10000, 0x100

# Flash timing: typical values of a Winbond W25Q32JV (the 4 MB flash on ESP32 modules; datasheet AC
# characteristics): 4 KB sector erase 45 ms, 64 KB block erase 150 ms, page (256 B) program 0.4 ms.
SECTOR_ERASE_S, BLOCK_ERASE_S, PAGE_PROGRAM_S = 0.045, 0.150, 0.0004
# The ROM's SPI_FLASH_MD5: software MD5 (~18 cycles per byte) on a CPU clocked from the 40 MHz crystal (the
# ROM does not start the PLL), the flash read 4 KiB at a time at ~8 MB/s in between (docs/virtual-board.md).
ROM_MD5_BYTES_S = 1 / (18 / 40e6 + 1 / 8e6)  # ~1.8 MB/s
JEDEC_IDS = {0x400000: 0x1640EF, 0x800000: 0x1740EF, 0x1000000: 0x1840EF}  # Winbond W25Q32/64/128


class WireError(ValueError):
    """A request the ROM answers with an error code."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def slip_encode(packet: bytes) -> bytes:
    return b"\xc0" + packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


class SlipDecoder:
    """Frames from a byte stream; bytes outside frames (a terminal's typing) are dropped, as is a frame
    with a bad escape or one too long for the ROM's buffer."""

    def __init__(self):
        self._buf = None  # None: between frames
        self._esc = False
        self._bad = False

    def feed(self, data: bytes) -> list[bytes]:
        frames = []
        data, i, n = bytes(data), 0, len(data)
        while i < n:
            if self._buf is None:
                j = data.find(b"\xc0", i)
                if j < 0:
                    break
                self._buf, self._esc, self._bad, i = bytearray(), False, False, j + 1
                continue
            j = data.find(b"\xc0", i)
            self._take(data[i:j if j >= 0 else n])
            if j < 0:
                break
            if self._buf and not self._bad:
                frames.append(bytes(self._buf))
            # C0 C0 is one frame's end and the next one's start; after a frame, wait for a C0
            self._buf = bytearray() if not self._buf else None
            self._esc, self._bad, i = False, False, j + 1
        return frames

    def _take(self, chunk: bytes):
        """Bytes inside a frame, no C0 among them: escapes undone (one may straddle two reads)."""
        if self._esc and chunk:
            self._esc = False
            self._unescape(chunk[0])
            chunk = chunk[1:]
        parts = chunk.split(b"\xdb")
        self._append(parts[0])
        for k, part in enumerate(parts[1:], 1):
            if not part:  # ESC at the end of this read: its code comes in the next
                self._esc = k == len(parts) - 1
                if not self._esc:
                    self._bad = True  # ESC ESC
                continue
            self._unescape(part[0])
            self._append(part[1:])

    def _unescape(self, code):
        if code == ESC_END:
            self._append(b"\xc0")
        elif code == ESC_ESC:
            self._append(b"\xdb")
        else:
            self._bad = True

    def _append(self, b: bytes):
        if len(self._buf) + len(b) > MAX_FRAME:
            self._bad = True
        elif not self._bad:
            self._buf += b


def checksum(data: bytes) -> int:
    c = 0xEF
    for b in data:
        c ^= b
    return c


class FlashFile:
    """The board's flash image file as a NOR chip: erase sets bytes to FF, programming can only clear bits."""

    def __init__(self, path, size):
        self.path = path
        self.size = size
        self._f = open(path, "r+b")

    def read(self, offset, n):
        self._f.seek(offset)
        return self._f.read(n)

    def erase(self, offset, n):
        self._f.seek(offset)
        self._f.write(b"\xff" * n)

    def program(self, offset, data):
        old = self.read(offset, len(data))
        n = len(data)
        anded = (int.from_bytes(old, "little") & int.from_bytes(data, "little")).to_bytes(n, "little")
        self._f.seek(offset)
        self._f.write(anded)

    def flush(self):
        self._f.flush()

    def close(self):
        self._f.close()


def erase_seconds(offset, size):
    """How long the ROM's erase of [offset, offset+size) takes: 64 KB blocks where aligned, sectors else."""
    start, end = offset - offset % SECTOR, -(-(offset + size) // SECTOR) * SECTOR
    t, a = 0.0, start
    while a < end:
        if a % BLOCK == 0 and a + BLOCK <= end:
            t, a = t + BLOCK_ERASE_S, a + BLOCK
        else:
            t, a = t + SECTOR_ERASE_S, a + SECTOR
    return t


class RomLoader:
    def __init__(self, chip: chips.Chip, flash: FlashFile, *, mac: bytes, baud: int = 115200, clock=time.monotonic):
        self.chip = chip
        self.clock = clock  # when a frame's last byte arrived (the supervisor feeds whole arrivals at once)
        self.flash = flash
        self.baud = baud
        self.regs = {**chip.registers, **chips.mac_registers(chip, mac)}
        if chip.magic_value is not None:
            self.regs[chips.CHIP_DETECT_MAGIC_REG_ADDR] = chip.magic_value
        self._slip = SlipDecoder()
        self._write = None  # (kind, offset, block_size, end, decompressor, written) of a FLASH(_DEFL)_BEGIN
        self._mem = None  # (address, bytes) of the segment a MEM_BEGIN opened
        self._ram = {}  # segments uploaded to RAM: address -> bytes
        self.stub = None  # romstub.Stub once esptool's stub runs
        self.halted = False  # foreign code was run: nothing answers until a reset

    # ----- the wire -------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list:
        actions = []
        for frame in self._slip.feed(data):
            if self.halted:
                break
            actions += self.stub.packet(frame, self.clock()) if self.stub else self._packet(frame)
        return actions

    def _packet(self, frame: bytes) -> list:
        if len(frame) < HEADER.size:
            return []  # not even a header: nothing to answer
        direction, op, size, chk = HEADER.unpack_from(frame)
        if direction != 0:
            return []
        data = frame[HEADER.size:]
        actions = []
        try:
            if len(data) != size:
                raise WireError(INVALID_MESSAGE)
            value, body, actions = self._command(op, data, chk)
        except WireError as e:
            return [self._response(op, 0, b"", e.code)]
        if op == SYNC:
            return [self._response(op, value, body)] * 8 + actions
        delays = [a for a in actions if a[0] == "delay"]  # the flash is busy before the ROM answers
        return delays + [self._response(op, value, body)] + [a for a in actions if a[0] != "delay"]

    def _response(self, op, value, body=b"", error=0):
        status = bytes([1 if error else 0, error, 0, 0])
        return slip_encode(HEADER.pack(1, op, len(body) + 4, value) + body + status)

    # ----- commands -------------------------------------------------------------------------------------

    def _command(self, op, data, chk):
        """(value, response data, actions around the response); raises WireError with the ROM's code."""
        if op == SYNC:
            if data != SYNC_PAYLOAD:
                raise WireError(INVALID_MESSAGE)
            return SYNC_VALUE, b"", []
        if op == READ_REG:
            (addr,) = _words(data, 1)
            return self.read_reg(addr), b"", []
        if op == WRITE_REG:
            if not data or len(data) % 16:
                raise WireError(INVALID_MESSAGE)
            for i in range(0, len(data), 16):
                addr, value, mask, _delay = struct.unpack_from("<IIII", data, i)
                self.write_reg(addr, value, mask)
            return 0, b"", []
        if op == GET_SECURITY_INFO:
            if not self.chip.security_info or data:
                raise WireError(INVALID_MESSAGE)
            return 0, self.security_info(), []
        if op == SPI_ATTACH:
            _words(data, 2)  # hspi_arg, then is_legacy and 3 zero bytes (ROM only)
            return 0, b"", []
        if op == SPI_SET_PARAMS:
            _words(data, 6)
            return 0, b"", []
        if op in (FLASH_BEGIN, FLASH_DEFL_BEGIN):
            return self._flash_begin(op, data)
        if op in (FLASH_DATA, FLASH_DEFL_DATA):
            return self._flash_data(op, data, chk)
        if op in (FLASH_END, FLASH_DEFL_END):
            _words(data, 1)
            self._write = None
            self.flash.flush()
            return 0, b"", [("run",)]  # 0 reboots, 1 runs the user code: either way the app boots
        if op == SPI_FLASH_MD5:
            addr, size, _, _ = _words(data, 4)
            self._check_range(addr, size, FLASH_READ_ERR)
            md5 = hashlib.md5(self.flash.read(addr, size)).hexdigest().encode()
            return 0, md5, [("delay", size / ROM_MD5_BYTES_S)]
        if op == READ_FLASH_SLOW:
            addr, size = _words(data, 2)
            if size > 64:
                raise WireError(READ_LENGTH_ERR)
            self._check_range(addr, size, FLASH_READ_ERR)
            return 0, self.flash.read(addr, size).ljust(64, b"\xff"), []
        if op == CHANGE_BAUDRATE:
            new, _old = _words(data, 2)
            if not 300 <= new <= 5_000_000:
                raise WireError(FAILED_TO_ACT)
            # the ROM sets its UART's divider from the crystal (the second word, 0 from esptool, unused);
            # a stub started later keeps that speed on its faster clock (romstub.Stub)
            self.baud = new
            return 0, b"", [("baud", new)]
        if op in (MEM_BEGIN, MEM_DATA, MEM_END):
            return 0, b"", self.mem_command(op, data, chk)
        raise WireError(INVALID_MESSAGE)

    def security_info(self):
        return struct.pack("<IBBBBBBBBII", 0, 0, *([0] * 7), self.chip.image_chip_id, 0)

    def mem_command(self, op, data, chk=None):
        """MEM_BEGIN / MEM_DATA / MEM_END, as the ROM (and the stub: `chk` None, it checks no checksum) take
        them: actions after the answer; WireError for a bad request. Run, esptool's stub for this chip
        starts and greets; anything else halts the board."""
        if op == MEM_BEGIN:
            size, _blocks, _block_size, addr = _words(data, 4)
            self._mem = (addr, size)
            self._ram[addr] = b""
            return []
        if op == MEM_DATA:
            if len(data) < 16 or self._mem is None:
                raise WireError(INVALID_MESSAGE if len(data) < 16 else FAILED_TO_ACT)
            if chk is not None and checksum(data[16:]) != chk & 0xFF:
                raise WireError(INVALID_CRC)
            addr, size = self._mem
            self._ram[addr] = (self._ram[addr] + data[16:])[:size]
            return []
        run, entry = _words(data, 2)
        self._mem = None
        if run != 0:  # esptool sends 1 for "load only"
            return []
        from . import romstub

        segments, self._ram = self._ram, {}
        if self.stub is None and romstub.recognise(self.chip, segments, entry):
            self.stub = romstub.Stub(self)
            return [("delay", romstub.START_S), romstub.GREETING]
        self.halted = True  # a chip would jump into it; a virtual board runs no code but the stub's model
        return [FOREIGN_CODE]

    def read_reg(self, addr):
        if addr == self.chip.uart_clkdiv_reg:  # the stub runs the UART from the 80 MHz APB clock (PLL)
            return round((80_000_000 if self.stub else chips.CRYSTAL_HZ) / self.baud) & 0xFFFFF
        return self.regs.get(addr, 0)

    def write_reg(self, addr, value, mask):
        old = self.regs.get(addr, 0)
        self.regs[addr] = (old & ~mask) | (value & mask)
        base = self.chip.spi_reg_base
        if addr == base and self.regs[addr] & chips.SPI_CMD_USR:
            # esptool runs a SPI flash command (flash id): the opcode is in USR2's low bits
            command = self.regs.get(base + self.chip.spi_usr2_offs, 0) & 0xFFFF
            result = JEDEC_IDS.get(self.flash.size, 0) if command == SPIFLASH_RDID else 0
            self.regs[base + self.chip.spi_w0_offs] = result
            self.regs[addr] &= ~chips.SPI_CMD_USR  # done at once

    def _check_range(self, addr, size, code):
        if addr + size > self.flash.size:
            raise WireError(code)

    def _flash_begin(self, op, data):
        erase_size, blocks, block_size, offset, *_ = _words(data, self.chip.flash_begin_words)
        if block_size == 0 and blocks:
            raise WireError(INVALID_MESSAGE)
        if offset % SECTOR or offset + erase_size > self.flash.size:
            raise WireError(FAILED_TO_ACT)
        actions = []
        if erase_size:
            start = offset
            end = min(-(-(offset + erase_size) // SECTOR) * SECTOR, self.flash.size)
            self.flash.erase(start, end - start)
            actions.append(("delay", erase_seconds(offset, erase_size)))
        decomp = zlib.decompressobj() if op == FLASH_DEFL_BEGIN else None
        self._write = {"op": op, "offset": offset, "block": block_size, "d": decomp, "pos": offset}
        return 0, b"", actions

    def _flash_data(self, op, data, chk):
        if len(data) < 16:
            raise WireError(INVALID_MESSAGE)
        size, seq, _, _ = struct.unpack_from("<IIII", data)
        payload = data[16:]
        if size != len(payload):
            raise WireError(INVALID_MESSAGE)
        w = self._write
        if w is None or w["op"] + 1 != op:
            raise WireError(FAILED_TO_ACT)  # FLASH_DATA without FLASH_BEGIN (or DEFL_DATA after FLASH_BEGIN)
        if checksum(payload) != chk & 0xFF:
            raise WireError(INVALID_CRC)
        if op == FLASH_DATA:
            at, out = w["offset"] + seq * w["block"], payload
        else:
            try:
                out = w["d"].decompress(payload)
            except zlib.error:
                raise WireError(DEFLATE_ERR)
            at = w["pos"]
        if at + len(out) > self.flash.size:
            raise WireError(FLASH_WRITE_ERR)
        self.flash.program(at, out)
        w["pos"] = at + len(out)
        return 0, b"", [("delay", PAGE_PROGRAM_S * -(-len(out) // PAGE))] if out else []


def _words(data, n):
    if len(data) != 4 * n:
        raise WireError(INVALID_MESSAGE)
    return struct.unpack(f"<{n}I", data)
