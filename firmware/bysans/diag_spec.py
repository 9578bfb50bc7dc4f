# Diagnostics record v1, declared once. The firmware (bysans/diag.py) encodes it; the host decoder
# (fleet/codec/diag.py, which loads this file by path) and the generated JavaScript codecs decode it;
# docs/formats/diagnostics.md explains it with a worked example. Plain data: imports under MicroPython
# and CPython.
#
# The record travels on its own FPort (FPORT), never inside a reading frame: on the first wake after a
# power-on, then once per SEND_EVERY_S. 12 bytes, so it costs a node about 1.5 s of airtime a day at SF12
# (scripts/benches/diag.py measures it); the OTA check-ins carry the same fields at every check-in.
#
# Layout, multi-byte fields big-endian:
#   byte 0      VERSION
#   byte 1      reset cause of the last start that was not a deep-sleep wake (CAUSES index)
#   bytes 2-3   boots: starts since power-on that were not deep-sleep wakes (power-on is 1), less the OTA
#               client's own slot switches; saturates at 65535
#   bytes 4-5   watchdog resets since power-on; saturates at 65535
#   bytes 6-7   lowest free heap since the last record, in HEAP_UNIT bytes (65535: none measured)
#   bytes 8-11  short hash of the last uncaught exception: CRC-32 of its printed traceback (0: none)
try:
    from micropython import const
except ImportError:  # CPython, when the host loads this file
    def const(x):
        return x

VERSION = const(1)
FPORT = const(221)
LENGTH = const(12)
HEAP_UNIT = const(16)
HEAP_NONE = const(0xFFFF)
SEND_EVERY_S = const(86400)  # one record a day ...
CAUSES = ("unknown", "power_on", "hard", "watchdog", "deepsleep", "soft", "brownout", "panic")
# (name, bytes) in wire order after the version byte
FIELDS = (
    ("reset_cause", 1),
    ("boots", 2),
    ("watchdog_resets", 2),
    ("heap_min", 2),
    ("exception", 4),
)
