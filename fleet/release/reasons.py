"""Why a release or its metadata is refused. The codes are the firmware's (firmware/bysans/ota/reasons.py,
loaded by file path through fleet.firmware_data): the device and the host refuse with the same numbers.
This module adds what only the host needs: an exit code, a message and a hint per reason."""

import enum

from .. import firmware_data

TABLE = firmware_data.load("bysans/ota/reasons.py")  # OK = 0, MALFORMED = 1, ..., NAMES, FORMAT, ROOT_TYPE


class _Reason(enum.IntEnum):
    @property
    def exit_code(self) -> int:
        """The exit code of `fleet release verify` for this refusal (0 when accepted)."""
        return 0 if self.value == TABLE.OK else 10 + int(self)

    @property
    def message(self) -> str:
        return _MESSAGES[self.name]

    @property
    def hint(self) -> str:
        return _HINTS.get(self.name, "")


Reason = _Reason("Reason", [(name, getattr(TABLE, name)) for name in TABLE.NAMES], module=__name__,
                 qualname="Reason")
Reason.__doc__ = "A refusal reason: the firmware's code, with the host's exit code, message and hint."

_MESSAGES = {
    "OK": "accepted",
    "MALFORMED": "the metadata is malformed (not a signed metadata file of this format)",
    "BAD_SIGNATURE": "bad signature: the signed metadata was changed or signed by another key",
    "NOT_DELEGATED": "the signing key is not delegated for this kommune",
    "REVOKED": "the signing key has been revoked",
    "DOWNGRADE": "downgrade: the counter is lower than the one installed",
    "EXPIRED": "the metadata has expired",
    "WRONG_BOARD": "the release is for another board",
    "WRONG_KOMMUNE": "the release is not for this kommune",
    "TOO_LONG": "a file is longer than the manifest announces",
    "TOO_SHORT": "a file is shorter than the manifest announces",
    "BAD_HASH": "a file's SHA-256 differs from the manifest's (tampered or corrupt)",
    "UNLISTED": "the release folder holds a file its signed manifest does not list",
}

_HINTS = {
    "MALFORMED": "rebuild the release with 'fleet release build' and sign it with 'fleet release sign'",
    "BAD_SIGNATURE": "sign the release again with 'fleet release sign'; if you did not change it, do not trust it",
    "NOT_DELEGATED": "sign with a release key of that kommune ('fleet keys list'; 'fleet keys add-release --kommune K')",
    "REVOKED": "sign with a key that is not revoked ('fleet keys list')",
    "DOWNGRADE": "a new release needs a higher --counter than the installed one",
    "EXPIRED": "sign the release again (fleet release sign --expires-in 30d); renew the root with any 'fleet keys' change",
    "WRONG_BOARD": "build the release for this board (fleet release build --board B)",
    "WRONG_KOMMUNE": "sign the release for this kommune (fleet release sign --kommune K)",
    "TOO_LONG": "the file does not match the signed manifest: rebuild or re-download the release",
    "TOO_SHORT": "the file does not match the signed manifest: rebuild or re-download the release",
    "BAD_HASH": "the file does not match the signed manifest: rebuild or re-download the release",
    "UNLISTED": "a release is its manifest and the files it lists, nothing more: remove the file, or rebuild "
                "and sign the release ('fleet release build', 'fleet release sign')",
}
