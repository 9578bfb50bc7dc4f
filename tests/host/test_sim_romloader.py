"""The virtual board's ROM loader on its own: framing, answers, error codes (esptool's own helpers
cross-check the checksum and the packet layout)."""

import hashlib
import struct
import zlib

import pytest
from esptool.loader import ESPLoader

from fleet.sim import chips
from fleet.sim.romloader import (FlashFile, RomLoader, SlipDecoder, checksum, erase_seconds, slip_encode)

SIZE = 0x400000


@pytest.fixture
def flash(tmp_path):
    p = tmp_path / "flash.img"
    p.write_bytes(b"\xff" * SIZE)
    f = FlashFile(str(p), SIZE)
    yield f
    f.close()


def request(op, data=b"", chk=0):
    return slip_encode(struct.pack("<BBHI", 0, op, len(data), chk) + data)


def answers(loader, raw):
    """The responses (direction, op, value, data, status, error) to what `raw` carries."""
    out = []
    for a in loader.feed(raw):
        if isinstance(a, bytes):
            [frame] = SlipDecoder().feed(a)
            d, op, size, value = struct.unpack_from("<BBHI", frame)
            body = frame[8:]
            assert len(body) == size
            out.append((d, op, value, body[:-4], body[-4], body[-3]))
    return out


def rom(flash, chip=chips.ESP32):
    return RomLoader(chip, flash, mac=bytes.fromhex("02a1b2c3d4e5"))


def test_checksum_is_esptools():
    data = bytes(range(256)) * 3
    assert checksum(data) == ESPLoader.checksum(data)


def test_slip_escapes_and_noise():
    packet = b"\x00\xc0\xdb\x01"
    framed = slip_encode(packet)
    assert framed == b"\xc0\x00\xdb\xdc\xdb\xdd\x01\xc0"
    dec = SlipDecoder()
    assert dec.feed(b"hello >>> " + framed[:3]) == []
    assert dec.feed(framed[3:] + b"noise" + framed) == [packet, packet]
    assert dec.feed(b"\xc0\x01\xdb\x00\x02\xc0") == []  # a bad escape drops the frame


def test_sync_answers_eight_times_as_the_rom(flash):
    got = answers(rom(flash), request(0x08, b"\x07\x07\x12\x20" + b"\x55" * 32))
    assert len(got) == 8
    assert all(g[:3] == (1, 0x08, 0x20120707) and g[4] == 0 for g in got)  # non-zero value: a ROM, not a stub


def test_esp32_is_told_by_its_magic_word_and_refuses_security_info(flash):
    loader = rom(flash)
    [(_, _, value, _, status, _)] = answers(loader, request(0x0A, struct.pack("<I", 0x40001000)))
    assert (value, status) == (0x00F01D83, 0)
    [(_, op, _, _, status, error)] = answers(loader, request(0x14))
    assert (op, status, error) == (0x14, 1, 0x05)


def test_esp32s3_answers_security_info_with_its_chip_id(flash):
    [(_, _, _, body, status, _)] = answers(rom(flash, chips.ESP32S3), request(0x14))
    flags, crypt_cnt, *purposes, chip_id, api = struct.unpack("<IBBBBBBBBII", body)
    assert status == 0 and chip_id == 9 and flags == 0


def test_mac_comes_back_through_the_efuse_words(flash):
    loader = rom(flash)
    w1 = answers(loader, request(0x0A, struct.pack("<I", 0x3FF5A004)))[0][2]
    w2 = answers(loader, request(0x0A, struct.pack("<I", 0x3FF5A008)))[0][2]
    assert struct.pack(">II", w2, w1)[2:8] == bytes.fromhex("02a1b2c3d4e5")  # esptool's read_mac


def begin(op, size, blocks, block, offset, words=4):
    return request(op, struct.pack("<IIII", size, blocks, block, offset) + (b"\0" * 4 if words == 5 else b""))


def data_packet(op, payload, seq, chk=None):
    return request(op, struct.pack("<IIII", len(payload), seq, 0, 0) + payload,
                   checksum(payload) if chk is None else chk)


def test_write_md5_and_slow_read(flash):
    loader = rom(flash)
    image = bytes(range(256)) * 8  # 2 KiB, two blocks of 1 KiB
    assert answers(loader, begin(0x02, len(image), 2, 0x400, 0x10000))[0][4] == 0
    for seq in (0, 1):
        assert answers(loader, data_packet(0x03, image[seq * 0x400:(seq + 1) * 0x400], seq))[0][4] == 0
    [(_, _, _, md5, status, _)] = answers(loader, request(0x13, struct.pack("<IIII", 0x10000, len(image), 0, 0)))
    assert md5 == hashlib.md5(image).hexdigest().encode() and status == 0  # ROM: 32 hex characters
    [(_, _, _, block, status, _)] = answers(loader, request(0x0E, struct.pack("<II", 0x10010, 16)))
    assert len(block) == 64 and block[:16] == image[16:32]


def test_deflate_write(flash):
    loader = rom(flash)
    image = b"MicroPython " * 500
    comp = zlib.compress(image, 9)
    assert answers(loader, begin(0x10, 0x2000, 1, 0x400, 0x20000))[0][4] == 0
    assert answers(loader, data_packet(0x11, comp, 0))[0][4] == 0
    assert flash.read(0x20000, len(image)) == image


@pytest.mark.parametrize("packet, error", [
    (data_packet(0x03, b"\x01" * 16, 0, chk=0x00), 0x07),  # bad checksum
    (request(0x02, b"\x00" * 5), 0x05),  # a payload of the wrong size
    (request(0x77), 0x05),  # an opcode the ROM does not know
    (request(0xD0), 0x05),  # erase-flash: the stub's, not the ROM's
    (begin(0x02, 0x2000, 8, 0x400, SIZE - 0x1000), 0x06),  # past the end of the flash
    (request(0x0E, struct.pack("<II", 0, 65)), 0x0A),  # a slow read of more than 64 bytes
    (request(0x13, struct.pack("<IIII", SIZE - 16, 32, 0, 0)), 0x09),  # MD5 past the end
], ids=["bad-checksum", "wrong-size", "unknown-op", "erase-flash", "past-the-end", "read-too-long", "md5-past-end"])
def test_bad_requests_get_the_roms_error_codes(flash, packet, error):
    loader = rom(flash)
    if packet[2] == 0x03:
        answers(loader, begin(0x02, 0x400, 1, 0x400, 0x10000))
    [(_, _, _, _, status, code)] = answers(loader, packet)
    assert (status, code) == (1, error)
    assert answers(loader, request(0x08, b"\x07\x07\x12\x20" + b"\x55" * 32))  # and it still answers


def test_bad_deflate_stream_is_a_deflate_error(flash):
    loader = rom(flash)
    answers(loader, begin(0x10, 0x1000, 1, 0x400, 0x10000))
    [(_, _, _, _, status, code)] = answers(loader, data_packet(0x11, b"not zlib at all", 0))
    assert (status, code) == (1, 0x0B)


def test_esp32s3_flash_begin_takes_the_encrypted_word(flash):
    loader = rom(flash, chips.ESP32S3)
    assert answers(loader, begin(0x02, 0x400, 1, 0x400, 0x0, words=5))[0][4] == 0
    assert answers(loader, begin(0x02, 0x400, 1, 0x400, 0x0, words=4))[0][5] == 0x05


def test_baud_change_follows_the_response(flash):
    actions = rom(flash).feed(request(0x0F, struct.pack("<II", 460800, 0)))
    assert isinstance(actions[0], bytes) and actions[1] == ("baud", 460800)


def test_a_stub_started_after_the_roms_baud_change_keeps_that_baud(flash):
    """fleet flash moves the line before the stub goes up: the ROM's divider counts from the 40 MHz crystal,
    the stub's from its 80 MHz clock, for the same 921600 baud (what esptool's get_crystal_freq reads)."""
    loader = rom(flash)
    clkdiv = chips.ESP32.uart_clkdiv_reg
    assert answers(loader, request(0x0A, struct.pack("<I", clkdiv)))[0][2] == round(40e6 / 115200)
    assert loader.feed(request(0x0F, struct.pack("<II", 921600, 0)))[1] == ("baud", 921600)
    assert answers(loader, request(0x0A, struct.pack("<I", clkdiv)))[0][2] == round(40e6 / 921600)
    segments, entry = esptool_stub("esp32")
    assert upload(loader, segments, entry)[-1] == slip_encode(b"OHAI")
    assert stub_answers(loader, request(0x0A, struct.pack("<I", clkdiv)))[0][1] == round(80e6 / 921600)


def test_programming_only_clears_bits(flash):
    flash.program(0x1000, b"\x0f")
    flash.program(0x1000, b"\xf1")
    assert flash.read(0x1000, 1) == b"\x01"


def test_erase_time_uses_blocks_where_aligned():
    assert erase_seconds(0x10000, 0x10000) == pytest.approx(0.150)
    assert erase_seconds(0x1000, 0x1000) == pytest.approx(0.045)


def upload(loader, segments, entry, run=True):
    """esptool's _upload_segment for each (address, bytes), then MEM_END; the actions MEM_END gave."""
    for addr, data in segments:
        blocks = -(-len(data) // 0x1800)
        assert answers(loader, request(0x05, struct.pack("<IIII", len(data), blocks, 0x1800, addr)))[0][4] == 0
        for seq in range(blocks):
            assert answers(loader, data_packet(0x07, data[seq * 0x1800:(seq + 1) * 0x1800], seq))[0][4] == 0
    return loader.feed(request(0x06, struct.pack("<II", 0 if run else 1, entry)))


def esptool_stub(chip):
    """What esptool itself uploads for `chip` (its StubFlasher, the JSON it ships)."""
    from esptool.loader import StubFlasher
    from esptool.targets import CHIP_DEFS

    s = StubFlasher(CHIP_DEFS[chip])
    return [(s.text_start, s.text), (s.data_start, bytes(s.data))], s.entry


def stub_answers(loader, raw):
    """The stub's responses: (op, value, data, status code) with its two big-endian status bytes."""
    out = []
    for a in loader.feed(raw):
        if isinstance(a, bytes) and a.startswith(b"\xc0\x01"):
            [frame] = SlipDecoder().feed(a)
            _, op, size, value = struct.unpack_from("<BBHI", frame)
            body = frame[8:]
            assert len(body) == size
            out.append((op, value, body[:-2], struct.unpack(">H", body[-2:])[0]))
    return out


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def stubbed(flash, chip=chips.ESP32, clock=None):
    loader = RomLoader(chip, flash, mac=bytes.fromhex("02a1b2c3d4e5"), clock=clock or Clock())
    segments, entry = esptool_stub(chip.name)
    actions = upload(loader, segments, entry)
    assert actions[-1] == slip_encode(b"OHAI") and loader.stub is not None
    return loader


@pytest.mark.parametrize("chip", [chips.ESP32, chips.ESP32S3], ids=["esp32", "esp32s3"])
def test_esptools_stub_for_the_chip_runs_and_greets(flash, chip):
    loader = stubbed(flash, chip)
    got = stub_answers(loader, request(0x08, b"\x07\x07\x12\x20" + b"\x55" * 32))
    assert len(got) == 8 and all(g == (0x08, 0, b"", 0) for g in got)  # value 0: esptool's sign of a stub


@pytest.mark.parametrize("what", ["garbage", "other-chip", "wrong-entry", "text-only"])
def test_code_that_is_not_the_stub_for_this_chip_is_not_pretended_to_run(flash, what):
    loader = rom(flash)
    segments, entry = esptool_stub("esp32")
    if what == "garbage":
        segments = [(0x40080000, b"\x00" * 64)]
    elif what == "other-chip":
        segments, entry = esptool_stub("esp32s3")
    elif what == "wrong-entry":
        entry += 4
    else:
        segments = segments[:1]
    actions = upload(loader, segments, entry)
    assert actions[0].startswith(b"\xc0\x01\x06")  # the ROM answers MEM_END, then jumps
    assert b"not esptool's flasher stub" in actions[1] and b"OHAI" not in b"".join(actions)
    assert loader.feed(request(0x08, b"\x07\x07\x12\x20" + b"\x55" * 32)) == []  # nothing answers now


def test_loaded_but_not_run_leaves_the_rom_answering(flash):
    loader = rom(flash)
    segments, entry = esptool_stub("esp32")
    assert [a for a in upload(loader, segments, entry, run=False) if b"OHAI" in a] == []
    assert loader.stub is None and answers(loader, request(0x08, b"\x07\x07\x12\x20" + b"\x55" * 32))


def test_stub_writes_16k_blocks_acks_first_and_answers_the_end_when_written(flash):
    clock = Clock()
    loader = stubbed(flash, clock=clock)
    image = bytes(range(256)) * 128  # 32 KiB: two stub blocks
    comp = zlib.compress(image, 9)
    assert stub_answers(loader, begin(0x10, len(image), 1, 0x4000, 0x10000, words=5))[0][3] == 0
    # acknowledged at once (no delay before the answer), written after it
    actions = loader.feed(data_packet(0x11, comp, 0))
    assert isinstance(actions[0], bytes)
    busy = loader.stub.busy_until - clock.t
    assert busy >= 0.150  # the first 64 KiB block erased, then 128 pages programmed
    end = loader.feed(request(0x12, struct.pack("<I", 1)))
    assert end[0] == ("delay", pytest.approx(busy))  # FLASH_DEFL_END waits for the last write
    assert flash.read(0x10000, len(image)) == image
    [(_, _, md5, code)] = stub_answers(loader, request(0x13, struct.pack("<IIII", 0x10000, len(image), 0, 0)))
    assert code == 0 and md5 == hashlib.md5(image).digest()  # 16 raw bytes, not the ROM's hex
    assert loader.stub is not None  # still the stub


def test_stub_read_flash_sends_one_acked_frame_at_a_time_then_the_md5(flash):
    loader = stubbed(flash)
    flash.program(0x20000, bytes(range(256)) * 40)
    want = flash.read(0x20000, 10000)
    frames = [a for a in loader.feed(request(0xD2, struct.pack("<IIII", 0x20000, 10000, 0x1000, 64)))
              if isinstance(a, bytes)]
    assert len(frames) == 2  # the answer, then the first 4 KiB only
    got = SlipDecoder().feed(frames[1])[0]
    while len(got) < 10000:
        [f] = [a for a in loader.feed(slip_encode(struct.pack("<I", len(got)))) if isinstance(a, bytes)]
        got += SlipDecoder().feed(f)[0]
    [f] = [a for a in loader.feed(slip_encode(struct.pack("<I", len(got)))) if isinstance(a, bytes)]
    assert got == want and SlipDecoder().feed(f)[0] == hashlib.md5(want).digest()


@pytest.mark.parametrize("packet, code", [
    (data_packet(0x03, b"\x01" * 16, 0, chk=0x00), 0xC600),  # FLASH_DATA without FLASH_BEGIN
    (request(0x0E, struct.pack("<II", 0, 16)), 0xC300),  # READ_FLASH_SLOW is the ROM's
    (request(0x77), 0xC300),
    (request(0x0D, b"\0" * 8), 0xC000),  # the stub's SPI_ATTACH takes one word
    (request(0xD1, struct.pack("<II", 0x1000, 0x800)), 0xC000),  # erase-region of half a sector
    (request(0x14), 0xFF00),  # ESP32: no security info
], ids=["data-before-begin", "read-slow", "unknown", "attach-size", "erase-unaligned", "security-info"])
def test_stub_errors_are_its_two_byte_codes(flash, packet, code):
    loader = stubbed(flash)
    [(_, _, _, got)] = stub_answers(loader, packet)
    assert got == code
    assert stub_answers(loader, request(0x08, b"\x07\x07\x12\x20" + b"\x55" * 32))


def test_a_failed_write_is_answered_to_the_next_command(flash):
    loader = stubbed(flash)
    stub_answers(loader, begin(0x10, 0x1000, 1, 0x4000, 0x10000, words=5))
    assert stub_answers(loader, data_packet(0x11, b"not zlib at all", 0))[0][3] == 0  # acked before inflating
    assert stub_answers(loader, request(0x12, struct.pack("<I", 1)))[0][3] == 0xC700  # inflate error


def test_stub_erase_region_takes_the_flash_time(flash):
    clock = Clock()
    loader = stubbed(flash, clock=clock)
    flash.program(0x30000, b"\x00" * 16)
    actions = loader.feed(request(0xD1, struct.pack("<II", 0x30000, 0x10000)))
    assert actions[0] == ("delay", pytest.approx(0.150)) and flash.read(0x30000, 16) == b"\xff" * 16


def test_rom_md5_takes_its_time(flash):
    actions = rom(flash).feed(request(0x13, struct.pack("<IIII", 0, 0x100000, 0, 0)))
    assert actions[0][0] == "delay" and 0.3 < actions[0][1] < 2  # ~1.8 MB/s: a CPU on its crystal
