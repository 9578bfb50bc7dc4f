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


def test_programming_only_clears_bits(flash):
    flash.program(0x1000, b"\x0f")
    flash.program(0x1000, b"\xf1")
    assert flash.read(0x1000, 1) == b"\x01"


def test_erase_time_uses_blocks_where_aligned():
    assert erase_seconds(0x10000, 0x10000) == pytest.approx(0.150)
    assert erase_seconds(0x1000, 0x1000) == pytest.approx(0.045)


def test_code_uploaded_to_ram_does_not_run_and_the_board_says_so(flash):
    loader = rom(flash)
    assert answers(loader, request(0x05, struct.pack("<IIII", 16, 1, 0x1800, 0x40080000)))[0][4] == 0
    assert answers(loader, data_packet(0x07, b"\x00" * 16, 0))[0][4] == 0
    actions = loader.feed(request(0x06, struct.pack("<II", 0, 0x40080000)))  # run it
    assert isinstance(actions[0], bytes) and actions[0].startswith(b"\xc0\x01\x06")
    assert b"use esptool --no-stub" in actions[1] and b"OHAI" not in b"".join(actions)
