// Bysans's MicroPython for the TTGO LoRa32 V2.1 (ESP32, no PSRAM): ESP32_GENERIC plus ROMFS (docs/boards.md,
// "Heap"; docs/virtual-board.md, "ROMFS"). The two app slots are ROMFS images in the `romfs` partition (docs/ota.md,
// "ROM slots"); the running one runs in place from flash; the frozen names module (manifest.py) makes the
// firmware's names static qstrs.
#define MICROPY_HW_BOARD_NAME "TTGO LoRa32 V2.1 (Bysans)"
#define MICROPY_HW_MCU_NAME "ESP32"

// VfsRom and vfs.rom_ioctl over the partition labelled `romfs` (ports/esp32/esp32_partition.c); mp_init()
// mounts it at /rom. Off in ESP32_GENERIC.
#define MICROPY_VFS_ROM (1)
