# Reason codes of a refused update, shared by every check in bysans.ota, and the metadata format's version
# and document types. The one declaration: the host executes this file by path (fleet/firmware_data.py) and
# builds its Reason enum (fleet/release/reasons.py) and metadata constants from it.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

OK = const(0)
MALFORMED = const(1)      # not metadata of this format: garbage, truncated, a missing or mistyped field
BAD_SIGNATURE = const(2)  # no valid signature by a trusted key (or the signed bytes were changed)
NOT_DELEGATED = const(3)  # signed, but by a key the root did not delegate for this kommune
REVOKED = const(4)        # signed by a key the root revoked
DOWNGRADE = const(5)      # a lower counter (or root version) than the one installed
EXPIRED = const(6)        # the release manifest or the root metadata is past its expiry
WRONG_BOARD = const(7)    # the release is not for this board
WRONG_KOMMUNE = const(8)  # the release is not for this device's kommune
TOO_LONG = const(9)       # a file has more bytes than the manifest announced
TOO_SHORT = const(10)     # a file ended before the announced length
BAD_HASH = const(11)      # a file's SHA-256 differs from the manifest's
UNLISTED = const(12)      # a release folder holds a file its manifest does not list (the host's check of a
#                           folder; a device only ever fetches the files its manifest lists)

NAMES = ("OK", "MALFORMED", "BAD_SIGNATURE", "NOT_DELEGATED", "REVOKED", "DOWNGRADE", "EXPIRED",
         "WRONG_BOARD", "WRONG_KOMMUNE", "TOO_LONG", "TOO_SHORT", "BAD_HASH", "UNLISTED")

ROOT_TYPE = "bysans-root"
RELEASE_TYPE = "bysans-release"
FORMAT = const(1)


class Refused(Exception):
    def __init__(self, reason, detail=""):
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    @property
    def name(self):
        return NAMES[self.reason]

    def __str__(self):
        return NAMES[self.reason] + (": " + self.detail if self.detail else "")


def _need(cond, detail):
    if not cond:
        raise Refused(MALFORMED, detail)


def _is_int(x):
    # MicroPython: isinstance(True, int) is False, but in CPython it is True; exclude bools on both.
    return type(x) is int


def _is_str_list(x):
    if type(x) is not list:
        return False
    for s in x:
        if type(s) is not str:
            return False
    return True


