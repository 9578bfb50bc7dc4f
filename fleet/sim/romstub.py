"""esptool's flasher stub on a virtual board: recognised when esptool uploads it, then its protocol.

A chip's ROM loader runs whatever MEM_END points at. A virtual board runs no Xtensa code, so it runs only
the one program it models: esptool's default flasher stub for its chip (esptool 5.6 ships it as
`targets/stub_flasher/2/<chip>.json`, esp-flasher-stub). `recognise()` compares what was uploaded to RAM
with that file, read from the installed esptool (`esptool.loader.StubFlasher`), byte for byte: text and
data segments at their addresses and the entry point. Anything else (garbage, another chip's stub, the
legacy stub of `--stub-version 1`, a stub with plugins) is not run: see romloader.FOREIGN_CODE.

The stub's protocol, as esp-flasher-stub's command handler answers esptool (`loader.py` for the host's side):
- responses carry two status bytes, a big-endian code (0x0000 ok; 0xC000 bad length, 0xC100 bad
  checksum, 0xC300 invalid command, 0xC400 SPI failure, 0xC600 not in flash mode, 0xC700 inflate error,
  0xFF00 not implemented); SYNC answers eight times with value 0 (how esptool tells a stub);
- FLASH_(DEFL_)BEGIN erases nothing up front: it starts erasing the region's first unit (a 64 KiB block
  where aligned, else a 4 KiB sector) and answers; FLASH_(DEFL_)DATA blocks (16 KiB) are acknowledged as
  soon as they arrive and written while the next one comes over the wire, erasing ahead as needed; an
  error in that write is answered to the next command; FLASH_(DEFL_)END answers once the last block is
  written, and stays in the stub;
- SPI_FLASH_MD5 answers 16 raw bytes; READ_FLASH sends 4 KiB frames, one at a time, each acknowledged by
  the host with the byte count so far, then the MD5 of all of it; ERASE_FLASH and ERASE_REGION answer
  once the flash is erased; READ_FLASH_SLOW (a ROM command) is an invalid command.

Time: the flash is one resource (erase and program, at romloader's W25Q32JV figures), the UART another
(bytes arrive while the flash works), the CPU hashes at STUB_MD5_BYTES_S. `clock` is the loader's.
"""

import hashlib
import struct
import zlib

from . import romloader as rl

# status codes (esp-flasher-stub src/commands.h, esptool util.py's table)
OK, BAD_DATA_LEN, BAD_CHECKSUM, INVALID_COMMAND = 0x0000, 0xC000, 0xC100, 0xC300
FAILED_SPI_OP, NOT_IN_FLASH_MODE, INFLATE_ERROR, TOO_MUCH_DATA, NOT_IMPLEMENTED = 0xC400, 0xC600, 0xC700, 0xC900, 0xFF00
ERASE_FLASH, ERASE_REGION, READ_FLASH, RUN_USER_CODE = 0xD0, 0xD1, 0xD2, 0xD3
GREETING = rl.slip_encode(b"OHAI")
START_S = 0.005  # from the jump to the greeting: zeroing .bss, clocks, UART (a few ms on a chip)

# Hashing and reading flash (docs/virtual-board.md, "Speed"): MD5 in software at ~18 cycles per byte (an
# optimised C MD5 on a 32-bit core: 40 ms per MB at 450 MHz), the stub's CPU on the PLL at 160 MHz, the
# flash read 4 KiB at a time at ~8 MB/s (40 MHz dual I/O), one after the other.
STUB_MD5_BYTES_S = 1 / (18 / 160e6 + 1 / 8e6)  # ~4.2 MB/s
CHIP_ERASE_S_PER_MB = 2.5  # W25Q32JV typical chip erase: 10 s for 4 MB


def stub_image(chip):
    """(text_start, text, data_start, data, entry) of esptool's default stub for `chip`."""
    from esptool.loader import StubFlasher
    from esptool.targets import CHIP_DEFS

    target = next(t for t in CHIP_DEFS.values() if t.CHIP_NAME == chip.esptool_name)
    s = StubFlasher(target)
    return s.text_start, bytes(s.text), s.data_start, bytes(s.data or b""), s.entry


def recognise(chip, segments: dict, entry: int) -> bool:
    """True when `segments` ({address: bytes} uploaded by MEM_BEGIN/MEM_DATA) and `entry` are esptool's
    default flasher stub for `chip`, and nothing else was uploaded."""
    text_start, text, data_start, data, stub_entry = stub_image(chip)
    want = {text_start: text, **({data_start: data} if data else {})}
    return entry == stub_entry and {a: bytes(b) for a, b in segments.items()} == want


class Stub:
    """The flasher stub's side of the wire, once it said OHAI. `packet(frame, now)` returns actions as
    RomLoader.feed does (bytes, ("delay", s), ("baud", n))."""

    def __init__(self, loader):
        self.rom = loader  # registers, chip, flash, clock: the chip's, shared with its ROM
        self.flash = loader.flash
        self.busy_until = 0.0  # the CPU is writing a block it has acknowledged
        self.flash_free = 0.0  # the flash chip is erasing or programming until then
        self.carry = OK  # an error of the last block's write, answered to the next command
        self.write = None
        self.reading = None

    # ----- framing ----------------------------------------------------------------------------------

    def response(self, op, code=OK, value=0, body=b""):
        return rl.slip_encode(rl.HEADER.pack(1, op, len(body) + 2, value) + body + struct.pack(">H", code))

    def packet(self, frame: bytes, now: float) -> list:
        if self.reading is not None:
            return self._read_ack(frame, now)
        if len(frame) < rl.HEADER.size:
            return []
        direction, op, size, chk = rl.HEADER.unpack_from(frame)
        data = frame[rl.HEADER.size:]
        start = max(now, self.busy_until)  # a block still being written holds up the next command
        wait = [("delay", start - now)] if start > now else []
        if direction != 0:
            return wait + [self.response(op, INVALID_COMMAND)]
        if len(data) != size:
            return wait + [self.response(op, BAD_DATA_LEN)]
        if self.carry != OK:
            code, self.carry = self.carry, OK
            return wait + [self.response(op, code)]
        code, value, body, after, work = self._command(op, data, chk, start)
        if code is None:
            return wait  # RUN_USER_CODE: no answer
        if op == rl.SYNC and code == OK:
            return wait + [self.response(op)] * 8
        out = wait + ([("delay", work)] if work > 0 else []) + [self.response(op, code, value, body if code == OK else b"")]
        return out + after

    # ----- commands ---------------------------------------------------------------------------------

    def _command(self, op, data, chk, t):
        """(code, value, body, actions after the response, seconds before the response)."""
        rom = self.rom
        if op == rl.SYNC:
            return (OK if len(data) == 36 else BAD_DATA_LEN), 0, b"", [], 0
        if op == rl.READ_REG:
            if len(data) != 4:
                return BAD_DATA_LEN, 0, b"", [], 0
            return OK, rom.read_reg(struct.unpack("<I", data)[0]), b"", [], 0
        if op == rl.WRITE_REG:
            if not data or len(data) % 16:
                return BAD_DATA_LEN, 0, b"", [], 0
            for i in range(0, len(data), 16):
                addr, value, mask, _ = struct.unpack_from("<IIII", data, i)
                rom.write_reg(addr, value, mask)
            return OK, 0, b"", [], 0
        if op == rl.SPI_ATTACH:
            return (OK if len(data) == 4 else BAD_DATA_LEN), 0, b"", [], 0
        if op == rl.SPI_SET_PARAMS:
            return (OK if len(data) == 24 else BAD_DATA_LEN), 0, b"", [], 0
        if op == rl.CHANGE_BAUDRATE:
            if len(data) != 8:
                return BAD_DATA_LEN, 0, b"", [], 0
            rom.baud = struct.unpack_from("<I", data)[0]  # the divider now counts from the stub's clock
            return OK, 0, b"", [("baud", rom.baud)], 0
        if op == rl.GET_SECURITY_INFO:
            if data:
                return BAD_DATA_LEN, 0, b"", [], 0
            if not rom.chip.security_info:
                return NOT_IMPLEMENTED, 0, b"", [], 0
            return OK, 0, rom.security_info(), [], 0
        if op in (rl.FLASH_BEGIN, rl.FLASH_DEFL_BEGIN):
            return self._begin(op, data, t)
        if op in (rl.FLASH_DATA, rl.FLASH_DEFL_DATA):
            return self._data(op, data, chk, t)
        if op in (rl.FLASH_END, rl.FLASH_DEFL_END):
            if len(data) != 4:
                return BAD_DATA_LEN, 0, b"", [], 0
            if self.write is None:
                return NOT_IN_FLASH_MODE, 0, b"", [], 0
            if self.write["remaining"]:
                return BAD_DATA_LEN, 0, b"", [], 0
            self.write = None
            self.flash.flush()
            return OK, 0, b"", [], 0  # esp-flasher-stub stays in the stub whatever the flag says
        if op == rl.SPI_FLASH_MD5:
            if len(data) != 16:
                return BAD_DATA_LEN, 0, b"", [], 0
            addr, size, _, _ = struct.unpack("<IIII", data)
            if addr + size > self.flash.size:
                return FAILED_SPI_OP, 0, b"", [], 0
            seconds = size / STUB_MD5_BYTES_S
            self.busy_until = t + seconds
            return OK, 0, hashlib.md5(self.flash.read(addr, size)).digest(), [], seconds
        if op == READ_FLASH:
            return self._read_begin(data, t)
        if op == ERASE_FLASH:
            seconds = self.flash.size / 0x100000 * CHIP_ERASE_S_PER_MB
            self.flash.erase(0, self.flash.size)
            self.busy_until = self.flash_free = max(t, self.flash_free) + seconds
            return OK, 0, b"", [], self.busy_until - t
        if op == ERASE_REGION:
            if len(data) != 8:
                return BAD_DATA_LEN, 0, b"", [], 0
            addr, size = struct.unpack("<II", data)
            if addr % rl.SECTOR or size % rl.SECTOR:
                return BAD_DATA_LEN, 0, b"", [], 0
            if addr + size > self.flash.size:
                return FAILED_SPI_OP, 0, b"", [], 0
            self.flash.erase(addr, size)
            self.busy_until = self.flash_free = max(t, self.flash_free) + rl.erase_seconds(addr, size)
            return OK, 0, b"", [], self.busy_until - t
        if op == RUN_USER_CODE:
            return None, 0, b"", [], 0
        if op in (rl.MEM_BEGIN, rl.MEM_DATA, rl.MEM_END):
            return self._mem(op, data)
        return INVALID_COMMAND, 0, b"", [], 0

    def _mem(self, op, data):
        try:
            after = self.rom.mem_command(op, data)
        except rl.WireError as e:
            return (NOT_IN_FLASH_MODE if e.code == rl.FAILED_TO_ACT else BAD_DATA_LEN), 0, b"", [], 0
        return OK, 0, b"", after, 0

    # ----- writing ----------------------------------------------------------------------------------

    def _begin(self, op, data, t):
        if len(data) not in (16, 20):
            return BAD_DATA_LEN, 0, b"", [], 0
        total, _blocks, _block_size, offset = struct.unpack_from("<IIII", data)
        start = offset - offset % rl.SECTOR
        end = -(-(offset + total) // rl.SECTOR) * rl.SECTOR
        if end > self.flash.size:
            return FAILED_SPI_OP, 0, b"", [], 0
        self.write = {"op": op, "pos": offset, "remaining": total, "erase_at": start, "erase_end": end,
                      "d": zlib.decompressobj() if op == rl.FLASH_DEFL_BEGIN else None}
        self._start_erase(t)  # not waited for: the stub answers at once
        return OK, 0, b"", [], 0

    def _erase_unit(self, at):
        w = self.write
        size = rl.BLOCK if at % rl.BLOCK == 0 and w["erase_end"] - at >= rl.BLOCK else rl.SECTOR
        return size, rl.BLOCK_ERASE_S if size == rl.BLOCK else rl.SECTOR_ERASE_S

    def _start_erase(self, t):
        """Starts erasing the next unit if the flash is idle (esp-flasher-stub's non-blocking erase)."""
        w = self.write
        if w["erase_at"] < w["erase_end"] and t >= self.flash_free:
            size, seconds = self._erase_unit(w["erase_at"])
            self.flash.erase(w["erase_at"], size)
            w["erase_at"] += size
            self.flash_free = t + seconds

    def _erased_to(self, target, t):
        """Waits (in model time) until the region up to `target` is erased; returns the time then."""
        w = self.write
        while w["erase_at"] < target:
            t = max(t, self.flash_free)
            size, seconds = self._erase_unit(w["erase_at"])
            self.flash.erase(w["erase_at"], size)
            w["erase_at"] += size
            self.flash_free = t + seconds
        return max(t, self.flash_free)

    def _data(self, op, data, chk, t):
        if len(data) < 16:
            return BAD_DATA_LEN, 0, b"", [], 0
        w = self.write
        if w is None or w["op"] + 1 != op:
            return NOT_IN_FLASH_MODE, 0, b"", [], 0
        size = struct.unpack_from("<I", data)[0]
        payload = data[16:]
        if op == rl.FLASH_DATA and size != len(payload):
            return TOO_MUCH_DATA, 0, b"", [], 0
        if rl.checksum(payload[:size]) != chk & 0xFF:
            return BAD_CHECKSUM, 0, b"", [], 0
        # acknowledged now; written after the answer, while the next block comes in
        if op == rl.FLASH_DATA:
            out = payload[:min(len(payload), w["remaining"])]
        else:
            self._start_erase(t)
            try:
                out = w["d"].decompress(payload[:size])
            except zlib.error:
                self.carry = INFLATE_ERROR
                return OK, 0, b"", [], 0
        if len(out) > w["remaining"] or w["pos"] + len(out) > self.flash.size:
            self.carry = FAILED_SPI_OP
            return OK, 0, b"", [], 0
        if out:
            t = self._erased_to(w["pos"] + len(out), t)
            self.flash.program(w["pos"], out)
            t += rl.PAGE_PROGRAM_S * -(-len(out) // rl.PAGE)
            self.flash_free = t
            w["pos"] += len(out)
            w["remaining"] -= len(out)
        if op == rl.FLASH_DEFL_DATA:
            self._start_erase(t)
        self.busy_until = t
        return OK, 0, b"", [], 0

    # ----- reading ----------------------------------------------------------------------------------

    def _read_begin(self, data, t):
        if len(data) != 16:
            return BAD_DATA_LEN, 0, b"", [], 0
        offset, length, packet_size, _in_flight = struct.unpack("<IIII", data)
        if packet_size == 0 or packet_size > 4096:
            return BAD_DATA_LEN, 0, b"", [], 0
        if offset + length > self.flash.size:
            return FAILED_SPI_OP, 0, b"", [], 0
        self.reading = {"at": offset, "end": offset + length, "packet": packet_size, "md5": hashlib.md5(),
                        "acked": 0, "length": length}
        return OK, 0, b"", self._read_next(), 0

    def _read_next(self) -> list:
        """The next data frame (one in flight: esp-flasher-stub sends the next after the host's ack), or
        the MD5 frame once everything was acknowledged."""
        r = self.reading
        if r["at"] < r["end"]:
            n = min(r["packet"], r["end"] - r["at"])
            chunk = self.flash.read(r["at"], n)
            r["at"] += n
            r["md5"].update(chunk)
            return [("delay", n / STUB_MD5_BYTES_S), rl.slip_encode(chunk)]
        self.reading = None
        return [rl.slip_encode(r["md5"].digest())]

    def _read_ack(self, frame, now):
        r = self.reading
        if len(frame) != 4:  # not an ack: the stub stops sending and ends with the MD5 so far
            self.reading = None
            return [rl.slip_encode(r["md5"].digest())]
        r["acked"] = struct.unpack("<I", frame)[0]
        if r["at"] < r["end"] or r["acked"] >= r["length"]:
            return self._read_next()
        return []
