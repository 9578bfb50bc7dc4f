"""Where a board keeps its files and which sensor types it has drivers for, as the firmware declares them
(firmware/bysans/device_spec.py, executed by file path through fleet.firmware_data).

    from fleet import device_spec
    files[device_spec.LORAWAN_CONFIG] = ...      # "/config/lorawan.json"
"""

from . import firmware_data

_SPEC = firmware_data.load("bysans/device_spec.py")

BOARD_FILE: str = _SPEC.BOARD_FILE
NODE_CONFIG: str = _SPEC.NODE_CONFIG
DEVICE_CONFIG: str = _SPEC.DEVICE_CONFIG
LORAWAN_CONFIG: str = _SPEC.LORAWAN_CONFIG
WIFI_CONFIG: str = _SPEC.WIFI_CONFIG
OTA_DIR: str = _SPEC.OTA_DIR
OTA_CONFIG: str = _SPEC.OTA_CONFIG
OTA_ROOT: str = _SPEC.OTA_ROOT
OTA_BOOT: str = _SPEC.OTA_BOOT
OTA_CONFIRMED: str = _SPEC.OTA_CONFIRMED
OTA_REPORT: str = _SPEC.OTA_REPORT
FUOTA_STATE: str = _SPEC.FUOTA_STATE
FUOTA_SESSION: str = _SPEC.FUOTA_SESSION
FUOTA_CLOCK: str = _SPEC.FUOTA_CLOCK
FUOTA_INBOX: str = _SPEC.FUOTA_INBOX
FUOTA_FRAG: str = _SPEC.FUOTA_FRAG
SENSOR_TYPES: tuple[str, ...] = _SPEC.SENSOR_TYPES
DISTANCE_TYPES: tuple[str, ...] = _SPEC.DISTANCE_TYPES
