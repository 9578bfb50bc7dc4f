# What a board and the host agree on about the board itself, declared once: where its files live on flash
# and which sensor types the firmware has drivers for. The firmware imports this module; the host executes
# this file by path (fleet/device_spec.py) to write and read the same files and to check board files.
# Plain data only: no imports, so CPython runs it as it is.

# Files on the board's flash (absolute paths; the OTA code also takes them under a test root)
BOARD_FILE = "/board.json"              # the board definition (`fleet flash` writes it; bysans.hal reads it)
NODE_CONFIG = "/config/node.json"       # the node's settings (docs/node.md)
DEVICE_CONFIG = "/config/device.json"   # name, kommune, site, kind, board, sensors (`fleet enroll --port`)
LORAWAN_CONFIG = "/config/lorawan.json" # DevEUI, JoinEUI and the AppKey (`fleet enroll --port`)
FUOTA_STATE = "/fuota.dat"              # FUOTA packages' state: clock offset, multicast groups (bysans.fuota)
FUOTA_SESSION = "/fuota.ses"            # the next class C session's start, board-clock s, as text (none: no file)
FUOTA_CLOCK = "/fuota.clk"              # when the next AppTimeReq is due, board-clock s, as text
FUOTA_FRAG = "/fuota"                   # the fragmentation session's files (bysans.fuota.frag: frag.ses, .log, .blk, .bin)
FUOTA_INBOX = "/fuota.in"               # FUOTA downlinks kept for the next wake: port u8 | length u8 | payload
WIFI_CONFIG = "/config/wifi.json"       # the WLANs the board may join for updates (`fleet wifi set`)
OTA_DIR = "/ota"                        # OTA state (bysans/ota/slots.py has the layout)
OTA_CONFIG = "/ota/config.json"         # server, device, kommune, check-in key (provisioning.ota)
OTA_ROOT = "/ota/root.json"             # the trusted root metadata the update chain starts from
OTA_BOOT = "/ota/boot.json"             # the boot state (bysans.ota.slots)
OTA_CONFIRMED = "/ota/confirmed"        # the confirmed slot's name; boot.py reads it (before any import)
OTA_REPORT = "/ota/report"              # an update report still to send over LoRaWAN (bysans.update_report)

# Sensor types of a board file's "sensors" entries: one driver each (bysans.drivers.open_sensor)
SENSOR_TYPES = ("bme280", "scd4x", "sps30", "vl53l1x", "jsn_sr04t", "lis3dh")
DISTANCE_TYPES = ("vl53l1x", "jsn_sr04t")  # the ones a waste node can measure the fill with
