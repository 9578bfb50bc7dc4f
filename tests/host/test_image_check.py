"""The base image's chip is checked against the board file before any byte is written; esptool's own
image parser reads the same header independently."""

import struct
import sys
from pathlib import Path

import pytest
from esptool.bin_image import LoadFirmwareImage

from fleet import boards
from fleet.errors import ImageMismatch
from provisioning.flash import HEADER_SIZE, build_board_name, check_image, image_info

sys.path.insert(0, str(Path(__file__).parent.parent / "e2e"))
from tests_image import fake_image  # noqa: E402


@pytest.mark.parametrize("chip,esptool_chip", [("esp32", "esp32"), ("esp32s3", "esp32s3"), ("esp32c3", "esp32c3")])
def test_header_chip_matches_esptools_parser(chip, esptool_chip):
    data = fake_image(boards.CHIPS[chip].image_id)
    assert image_info(data).chip == chip
    assert LoadFirmwareImage(esptool_chip, data).chip_id == boards.CHIPS[chip].image_id


def test_reference_chip_ids():
    assert tuple(boards.CHIPS[c].image_id for c in ("esp32", "esp32s3", "esp32c3")) == (0, 9, 5)
    assert HEADER_SIZE == struct.calcsize("<BBBBIB3sHBHH4sB")


def test_chip_registry_agrees_with_esptools_own_chip_table():
    from esptool.targets import CHIP_DEFS

    for chip in boards.CHIPS.values():
        if chip.esptool is None:
            assert chip.image_id is None and chip.name not in CHIP_DEFS
            continue
        target = CHIP_DEFS[chip.name]
        assert (target.CHIP_NAME, target.IMAGE_CHIP_ID) == (chip.esptool, chip.image_id), chip.name


def test_image_for_the_boards_chip_passes():
    assert check_image(fake_image(9), boards.get("heltec_v3")).chip == "esp32s3"
    ttgo = boards.get("ttgo_lora32_v21")
    bysans = fake_image(0, data=b"MicroPython ... " + build_board_name(ttgo.definition["micropython"]).encode())
    assert check_image(bysans, ttgo).chip == "esp32"
    assert LoadFirmwareImage("esp32", bysans).segments[0].data.startswith(b"MicroPython")
    # a virtual board has the imitated chip's ROM loader and flash (docs/virtual-board.md): its image
    assert check_image(fake_image(0), boards.get("virtual")).chip == "esp32"
    assert check_image(fake_image(9), boards.get("virtual_s3")).chip == "esp32s3"


@pytest.mark.parametrize("board,chip_id,words", [
    ("heltec_v3", 0, "for esp32, but heltec_v3 is an esp32s3"),
    ("ttgo_lora32_v21", 9, "for esp32s3, but ttgo_lora32_v21 is an esp32"),
    ("tbeam", 5, "for esp32c3"),
    ("virtual", 9, "virtual board imitating an esp32"),
    ("virtual_s3", 0, "virtual board imitating an esp32s3"),
])
def test_image_for_another_chip_is_refused(board, chip_id, words):
    with pytest.raises(ImageMismatch) as e:
        check_image(fake_image(chip_id), boards.get(board))
    assert words in e.value.message and "nothing was written" in e.value.message
    assert e.value.exit_code == 50 and e.value.hint


@pytest.mark.parametrize("data", [b"", b"\x00" * 64, fake_image(9, magic=0xE8), b"\xe9\x01"])
def test_not_an_image(data):
    with pytest.raises(ImageMismatch, match="not an ESP firmware image"):
        image_info(data)


def test_a_board_that_needs_our_micropython_build_refuses_the_ports_generic_image():
    """The TTGO's wake fits its heap only on Bysans's build (ROMFS, the firmware's names frozen: docs/boards.md,
    "Heap"): ESP32_GENERIC, right chip and all, is refused before any byte is written, naming the build."""
    ttgo = boards.get("ttgo_lora32_v21")
    assert ttgo.definition["micropython"] == "BYSANS_TTGO_LORA32"
    with pytest.raises(ImageMismatch) as e:
        check_image(fake_image(0, data=b"ESP32_GENERIC with ESP32"), ttgo)
    assert "needs Bysans's MicroPython build BYSANS_TTGO_LORA32" in e.value.message
    assert "nothing was written" in e.value.message
    assert "boards/micropython/BYSANS_TTGO_LORA32/" in e.value.hint and e.value.exit_code == 50
    # the name is the build's own, read from its mpconfigboard.h
    assert build_board_name("BYSANS_TTGO_LORA32") == "TTGO LoRa32 V2.1 (Bysans)"
