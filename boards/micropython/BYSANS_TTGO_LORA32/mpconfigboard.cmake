# Bysans's MicroPython for the TTGO LoRa32 V2.1: ESP32_GENERIC's settings, ROMFS (mpconfigboard.h), the table
# with a `romfs` partition, and the firmware's names module frozen (manifest.py). Built from outside the
# MicroPython tree (not built by this repository's CI: it needs ESP-IDF; docs/boards.md "Heap"):
#   make -C micropython/ports/esp32 BOARD_DIR=$PWD/boards/micropython/BYSANS_TTGO_LORA32
set(IDF_TARGET esp32)

# ESP-IDF reads a custom table's file name relative to the port: this folder's CSV, by its full path.
set(BYSANS_SDKCONFIG_TABLE ${CMAKE_BINARY_DIR}/sdkconfig.bysans_table)
file(WRITE ${BYSANS_SDKCONFIG_TABLE}
    "CONFIG_PARTITION_TABLE_CUSTOM=y\n"
    "CONFIG_PARTITION_TABLE_CUSTOM_FILENAME=\"${MICROPY_BOARD_DIR}/partitions-4MiB-ota-romfs.csv\"\n")

set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${SDKCONFIG_IDF_VERSION_SPECIFIC}
    boards/sdkconfig.ble
    ${BYSANS_SDKCONFIG_TABLE}
)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
