"""Why a release or its metadata is refused: the same codes as firmware/bysans/ota/verify.py."""

import enum


class Reason(enum.IntEnum):
    OK = 0
    MALFORMED = 1
    BAD_SIGNATURE = 2
    NOT_DELEGATED = 3
    REVOKED = 4
    DOWNGRADE = 5
    EXPIRED = 6
    WRONG_BOARD = 7
    WRONG_KOMMUNE = 8
    TOO_LONG = 9
    TOO_SHORT = 10
    BAD_HASH = 11

    @property
    def exit_code(self) -> int:
        """The exit code of `fleet release verify` for this refusal (0 when accepted)."""
        return 0 if self is Reason.OK else 10 + int(self)

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @property
    def hint(self) -> str:
        return _HINTS.get(self, "")


_MESSAGES = {
    Reason.OK: "accepted",
    Reason.MALFORMED: "the metadata is malformed (not a signed metadata file of this format)",
    Reason.BAD_SIGNATURE: "bad signature: the signed metadata was changed or signed by another key",
    Reason.NOT_DELEGATED: "the signing key is not delegated for this kommune",
    Reason.REVOKED: "the signing key has been revoked",
    Reason.DOWNGRADE: "downgrade: the counter is lower than the one installed",
    Reason.EXPIRED: "the metadata has expired",
    Reason.WRONG_BOARD: "the release is for another board",
    Reason.WRONG_KOMMUNE: "the release is not for this kommune",
    Reason.TOO_LONG: "a file is longer than the manifest announces",
    Reason.TOO_SHORT: "a file is shorter than the manifest announces",
    Reason.BAD_HASH: "a file's SHA-256 differs from the manifest's (tampered or corrupt)",
}

_HINTS = {
    Reason.MALFORMED: "rebuild the release with 'fleet release build' and sign it with 'fleet release sign'",
    Reason.BAD_SIGNATURE: "sign the release again with 'fleet release sign'; if you did not change it, do not trust it",
    Reason.NOT_DELEGATED: "sign with a release key of that kommune ('fleet keys list'; 'fleet keys add-release --kommune K')",
    Reason.REVOKED: "sign with a key that is not revoked ('fleet keys list')",
    Reason.DOWNGRADE: "a new release needs a higher --counter than the installed one",
    Reason.EXPIRED: "sign the release again (fleet release sign --expires-in 30d); renew the root with any 'fleet keys' change",
    Reason.WRONG_BOARD: "build the release for this board (fleet release build --board B)",
    Reason.WRONG_KOMMUNE: "sign the release for this kommune (fleet release sign --kommune K)",
    Reason.TOO_LONG: "the file does not match the signed manifest: rebuild or re-download the release",
    Reason.TOO_SHORT: "the file does not match the signed manifest: rebuild or re-download the release",
    Reason.BAD_HASH: "the file does not match the signed manifest: rebuild or re-download the release",
}
