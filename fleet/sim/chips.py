"""The chips a virtual board can imitate: what their ROM says and how esptool 5.6 tells them apart.

Each value is what the real chip answers (REFERENCE-2.md §1, checked against esptool 5.6's
`targets/esp32.py` and `targets/esp32s3.py`): esptool asks an ESP32 for the magic word at 0x40001000 after
its ROM refuses GET_SECURITY_INFO, and asks an ESP32-S3 for the chip id in GET_SECURITY_INFO (esptool
carries no magic value for the S3). The eFuse words describe an unremarkable chip of each kind (ESP32-D0WD-V3
revision v3.0; ESP32-S3 QFN56 revision v0.1); the MAC comes from the board.
"""

from dataclasses import dataclass, field

from ..boards import CHIPS

CRYSTAL_HZ = 40_000_000  # both chips on the project's boards run from a 40 MHz crystal


@dataclass(frozen=True)
class Chip:
    name: str  # the board file's word for it
    esptool_name: str  # esptool's CHIP_NAME
    image_chip_id: int  # ESP image header bytes 12-13 (IDF esp_chip_id_t)
    bootloader_offset: int  # where the ROM looks for the second-stage bootloader
    magic_value: int | None  # word at CHIP_DETECT_MAGIC_REG_ADDR (None: read as 0, esptool asks otherwise)
    security_info: bool  # the ROM implements GET_SECURITY_INFO
    flash_begin_words: int  # FLASH_BEGIN/FLASH_DEFL_BEGIN payload in u32s (ESP32 ROM: 4; later ROMs: 5)
    spi_reg_base: int  # the SPI0 controller esptool drives for the flash id
    spi_usr2_offs: int
    spi_w0_offs: int
    uart_clkdiv_reg: int
    mac_words: tuple  # (address of the word with the MAC's low 4 bytes, address of the high 2 bytes)
    registers: dict = field(default_factory=dict)  # other words esptool reads (eFuses, dates, calibration)
    download_banner: bytes = b""
    boot_banner: bytes = b""


def _named(name: str) -> dict:
    """What fleet.boards.CHIPS, the one table of chips, says of `name`: esptool's name, the image's chip id
    and where the bootloader goes."""
    c = CHIPS[name]
    return dict(name=c.name, esptool_name=c.esptool, image_chip_id=c.image_id, bootloader_offset=c.base_offset)


CHIP_DETECT_MAGIC_REG_ADDR = 0x40001000
SPI_CMD_USR = 1 << 18  # SPI_CMD_REG bit esptool sets to start a command and polls until clear

ESP32 = Chip(
    **_named("esp32"), magic_value=0x00F01D83,
    security_info=False, flash_begin_words=4,
    spi_reg_base=0x3FF42000, spi_usr2_offs=0x24, spi_w0_offs=0x80, uart_clkdiv_reg=0x3FF40014,
    # ESP32's MAC: eFuse BLK0 word 1 (low 4 bytes) and word 2 (high 2 bytes, then a CRC byte)
    mac_words=(0x3FF5A004, 0x3FF5A008),
    registers={
        0x3FF5A00C: (1 << 15) | (1 << 9),  # BLK0 word 3: pkg D0WD (1), chip rev bit 0
        0x3FF5A010: 100,  # word 4: CK8M_FREQ calibration, 100 with the RTC value below = a 40 MHz ROM clock
        0x3FF5A014: 1 << 20,  # word 5: chip rev bit 1
        0x3FF6607C: 1 << 31,  # APB_CTL_DATE: rev bit 2 (with bits 0 and 1: revision v3)
        0x3FF5F06C: 1024 << 7,  # RTCCALICFG1: 1024 * 15625 * 100 / 40 = 40 MHz, so CHANGE_BAUDRATE is exact
    },
    # REFERENCE-2.md §1 "ROM boot banners" (ECO3 ROM)
    download_banner=(b"ets Jul 29 2019 12:21:46\r\n\r\n"
                     b"rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n"
                     b"waiting for download\r\n"),
    boot_banner=b"ets Jul 29 2019 12:21:46\r\n\r\n",
)

ESP32S3 = Chip(
    **_named("esp32s3"), magic_value=None,
    security_info=True, flash_begin_words=5,
    spi_reg_base=0x60002000, spi_usr2_offs=0x20, spi_w0_offs=0x58, uart_clkdiv_reg=0x60000014,
    mac_words=(0x60007044, 0x60007048),
    registers={
        0x60007050: 1 << 18,  # BLOCK1 word 3: minor revision 1, package QFN56 (0)
    },
    download_banner=(b"ESP-ROM:esp32s3-20210327\r\nBuild:Mar 27 2021\r\n"
                     b"rst:0x1 (POWERON),boot:0x0 (DOWNLOAD(USB/UART0))\r\n"
                     b"waiting for download\r\n"),
    boot_banner=b"ESP-ROM:esp32s3-20210327\r\nBuild:Mar 27 2021\r\n",
)

CHIPS = {c.name: c for c in (ESP32, ESP32S3)}


def get(name: str) -> Chip:
    return CHIPS[name]


def mac_registers(chip: Chip, mac: bytes) -> dict:
    """The two eFuse words esptool's read_mac() turns back into `mac` (6 bytes)."""
    low = int.from_bytes(mac[2:6], "big")
    high = int.from_bytes(mac[0:2], "big")
    return {chip.mac_words[0]: low, chip.mac_words[1]: high}
