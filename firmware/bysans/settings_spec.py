# Settings over LoRaWAN downlink, format v1, declared once. The firmware (bysans/settings.py) reads the
# command and writes its acknowledgement; the host (fleet/settings/, which loads this file by path) writes
# the command and reads the acknowledgement; docs/formats/settings.md explains both with worked examples.
# Plain data only: this module must import under MicroPython and CPython.
#
# Command (downlink on FPORT, network -> node), multi-byte fields big-endian:
#   byte 0     VERSION
#   bytes 1-2  seq: 1..SEQ_MAX, per device; the node refuses a seq not above the last one it took (a replay
#              or an older command) with RESULT_STALE
#   then 1..len(KEYS) settings, each: key id (1 byte, KEYS) and its value (the key's bytes, unsigned);
#   a key at most once, nothing may follow.
# Acknowledgement (uplink on FPORT, node -> network):
#   byte 0     VERSION
#   then 1..ACK_MAX entries of 3 bytes: seq (2 bytes; 0 when a command was too short to carry one) and
#   its RESULT_*, oldest first.
# A command is all or nothing: one bad value refuses all of it (RESULT_OUT_OF_RANGE, RESULT_MALFORMED).
try:
    from micropython import const
except ImportError:  # CPython, when the host loads this file
    def const(x):
        return x

FPORT = const(3)
VERSION = const(1)
SEQ_MAX = const(65535)
ACK_MAX = const(4)

RESULT_APPLIED = const(0)
RESULT_STALE = const(1)         # seq not above the last taken: a replayed or older command
RESULT_OUT_OF_RANGE = const(2)  # a value outside its bounds (or not a multiple of its step)
RESULT_MALFORMED = const(3)     # unknown version or key, a key twice, a short or long frame
RESULT_NAMES = ("applied", "stale", "out_of_range", "malformed")

# Settable keys: (id, name as in /config/node.json, value bytes, minimum, maximum, step).
# The node's config (bysans/config.py) takes these bounds for these keys.
KEYS = (
    (1, "interval_s", 2, 60, 15300, 60),             # sampling interval: between readings, whole minutes
    (2, "batch_max_age_s", 3, 60, 86400, 1),         # send interval: longest wait from a reading to its uplink
    (3, "fill_alarm_bp", 2, 0, 10000, 1),            # fill threshold: alarm uplink at this fill (0: off)
    (4, "fire_threshold_cdeg", 2, 2000, 8500, 1),    # fire threshold: at least this hot (and risen)
)
