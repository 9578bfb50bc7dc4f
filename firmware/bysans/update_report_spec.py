# Update report v1, declared once: how a node says over LoRaWAN what became of an update (a LoRaWAN-only node
# sends no HTTP check-in). The firmware (bysans/update_report.py) encodes it; the host decoder
# (fleet/codec/update_report.py, which loads this file by path), the generated JavaScript codecs and ingest
# (fleet.fuota.store: it moves the device in its LoRaWAN rollout) read it; docs/formats/update-report.md
# explains it with a worked example. Plain data: imports under MicroPython and CPython.
#
# Its own FPort, 222: an application port (1..223) next to the diagnostics' 221, and none of the others the
# node or the LoRa Alliance's packages use (1 readings, 3 settings, 200-202 FUOTA, 203 TS006 firmware
# management, 221 diagnostics; 224 is LoRaWAN's test port, 225-255 reserved).
#
# Layout, 7 bytes, multi-byte fields big-endian:
#   byte 0      VERSION
#   byte 1      event (EVENTS index): 1 installed (the new slot runs on trial), 2 confirmed (its first boot's
#               self-test passed), 3 rolled_back (the board went back to its confirmed slot), 4 refused (the
#               payload was not installed: nothing changed)
#   byte 2      reason: refused -> the refusal's code (bysans/ota/reasons.py NAMES); rolled_back -> a
#               ROLLBACK_REASONS index; otherwise 0
#   bytes 3-6   the signed release manifest's counter of the release the event is about (0: not known, a
#               payload refused before its manifest could be read)
# 7 bytes keep the frame in the shortest airtime an SF12 uplink of 1..7 bytes has (1.32 s; 8..12 bytes take
# 1.48 s): the version string is not sent, the host knows it from the rollout whose counter matches.
#
# A node sends a report on REPEAT wakes after the outcome changed (one lost uplink loses nothing); a report
# that could not be sent is tried at the next wake.
try:
    from micropython import const
except ImportError:  # CPython, when the host loads this file
    def const(x):
        return x

VERSION = const(1)
FPORT = const(222)
LENGTH = const(7)
REPEAT = const(3)

EVENT_INSTALLED = const(1)
EVENT_CONFIRMED = const(2)
EVENT_ROLLED_BACK = const(3)
EVENT_REFUSED = const(4)
EVENTS = ("none", "installed", "confirmed", "rolled_back", "refused")

# Why a trial slot was given up (bysans/ota/slots.py), or a release not taken because it failed here before
ROLLBACK_REASONS = ("unknown", "BOOT_FAILED", "SLOT_INCOMPLETE", "SELFTEST", "FAILED_BEFORE")
