"""Every error a user can meet, each with what to do next.

Library code raises these; the CLI prints ``error: <message>`` and ``hint: <hint>`` and exits with
``exit_code``. Messages never contain key material.
"""


class FleetError(Exception):
    """Bad input or an answer from a device or service: not a bug in this program."""

    exit_code = 1
    default_hint = ""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = self.default_hint if hint is None else hint

    def __str__(self) -> str:
        return self.message


class UsageError(FleetError):
    exit_code = 2


class FragmentsError(UsageError):
    """FUOTA fragments that cannot be made or put together (bad lines, mixed sessions, too few of them)."""

    default_hint = "see docs/formats/fuota.md for the fragment lines and the session fields"


class PayloadError(UsageError):
    """A FUOTA update payload that cannot be built from what was given (an unsigned release, another board
    or kommune, no such base release)."""

    default_hint = "see docs/formats/fuota.md, \"Update payload\""


class Interrupted(FleetError):
    """Ctrl-C: the message says what state it left things in (the CLI builds it; the library lets
    KeyboardInterrupt through)."""

    exit_code = 130


class NotFound(FleetError):
    exit_code = 3


class Conflict(FleetError):
    exit_code = 4


class SimUnavailable(FleetError):
    default_hint = "run ./scripts/test or ./scripts/demo once: they install the MicroPython unix port into .venv"


class SimError(FleetError):
    """A virtual board did not start or did not answer."""

    exit_code = 5


class SerialPortError(FleetError):
    """The serial port is missing, busy or went away."""

    exit_code = 6
    default_hint = ("check the USB cable and that no other program (a serial monitor, mpremote, "
                    "another fleet command) has the port open; 'fleet sim list' shows virtual boards")


class PortNotFound(SerialPortError):
    """No serial port by that name: nothing is plugged in there (the CLI's hint lists the ports that exist)."""

    default_hint = ("check the port's name and the USB cable (some cables only charge); "
                    "'python -m serial.tools.list_ports -v' lists the serial ports, 'fleet sim list' virtual boards")


class BoardNotAnswering(FleetError):
    exit_code = 7
    default_hint = ("press the board's reset button or replug it, then try again; if it runs an app that "
                    "sleeps, wait for it to wake")


class BoardSilent(BoardNotAnswering):
    """Nothing at all came back on the port: no board, no power, a sleeping board, or the wrong port."""

    default_hint = ("check that the cable is in and the board has power (its LED), and that this is the "
                    "board's port; a board in deep sleep answers only when awake: press its reset button "
                    "(RST/EN), then run the same command again")


class BoardInDownloadMode(BoardNotAnswering):
    """The chip's ROM loader answered (download mode), not MicroPython."""

    default_hint = ("the board is in download mode: press RESET without holding BOOT (or replug it), then run "
                    "the same command again; to write the MicroPython base image now, add --firmware IMAGE.bin")


class NotMicroPython(BoardNotAnswering):
    """Something answered on the port, but not a MicroPython REPL: another firmware or another device."""

    default_hint = ("if this is the board, flash the MicroPython base image first: fleet flash --port PORT "
                    "--board BOARD --firmware ESP32_GENERIC.bin (hold BOOT while pressing RESET if esptool "
                    "cannot reach it); otherwise pick the board's port")


# ---- keys and releases (fleet/keys, fleet/release) ----

class KeyUsageError(UsageError):
    """A key asked to do what its kind cannot (a public key asked to sign, a release key asked to act as root)."""

    default_hint = "signing needs a private key file (fleet keys list shows which keys have one here)"


class KeyNotFound(NotFound):
    default_hint = "fleet keys list shows the keys; --keys DIR or FLEET_KEYS_DIR picks the key directory"


class KeyPassphraseError(FleetError):
    """A private key file could not be opened: wrong or missing passphrase, or not a key file."""

    exit_code = 8
    default_hint = "give the key's passphrase at the prompt or in FLEET_KEY_PASSPHRASE"


class ReleaseError(FleetError):
    """A release or update repository cannot be built, signed or published as asked."""

    exit_code = 9


class AppTooBig(ReleaseError):
    """A release takes more flash than the board leaves to one release (its `app_budget`), counted as littlefs
    stores it: whole 4 KiB blocks per file and a metadata pair per directory (fleet/release/flashspace.py)."""

    exit_code = 25  # 10-21 are verification refusals (10 + fleet.release.Reason)

    def __init__(self, board: str, size: int, budget: int, largest: list, *, blocks: int | None = None,
                 budget_blocks: int | None = None, files: int | None = None):
        top = ", ".join(f"{p} {n}" for p, n in largest)
        if blocks is None:
            msg = (f"the release takes {size} bytes of flash, over board {board}'s app budget of "
                   f"{budget} bytes by {size - budget} (largest files: {top})")
        else:
            msg = (f"the release takes {blocks} blocks of 4096 bytes in littlefs ({blocks * 4096} bytes: "
                   f"{files} files of {size} bytes, each file over 128 bytes in whole blocks, two per "
                   f"directory), over board {board}'s app budget of {budget_blocks} blocks ({budget} bytes, "
                   f"one of two app slots) by {blocks - budget_blocks} (largest files: {top})")
        super().__init__(msg, hint="ship fewer, larger files (each file takes at least one 4 KiB block), leave out "
                                   "what the board does not use, or give the board a partition table with a "
                                   "bigger vfs; the budget is the board file's 'app_budget' (docs/boards.md)")
        self.board, self.size, self.budget = board, size, budget
        self.blocks, self.budget_blocks = blocks, budget_blocks


class VerificationRefused(FleetError):
    """A release or its metadata was refused; exit code 10 + the reason code (fleet.release.Reason)."""

    def __init__(self, reason, message: str, *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.reason = reason
        self.exit_code = 10 + int(reason)


# -- registry, enrollment and exports (fleet/registry, provisioning/enrollment.py, fleet/exports); exit codes 30-39 --

class UnknownKommune(UsageError):
    """A kommunekode that is not one of the 98 (fleet/data/kommuner.csv)."""

    default_hint = "'fleet devices kommuner' lists the 98 kommunekoder and names"


class BadIdentifier(UsageError):
    """A DevEUI, JoinEUI, MAC or AppKey that is not what it should be (an AppKey is never echoed)."""


class CsvInvalid(UsageError):
    """An enrollment CSV with problems; `problems` lists every one (line, column, message). Nothing was
    enrolled."""

    default_hint = "fix the lines named and run the same command again; 'fleet enroll --help' shows the columns"

    def __init__(self, path, problems):
        self.problems = list(problems)
        n = len(self.problems)
        more = f" (and {n - 1} more problem{'s' if n > 2 else ''})" if n > 1 else ""
        super().__init__(f"{path}: {self.problems[0]}{more}; nothing was enrolled")


class SecretKeyError(FleetError):
    """The registry's secret key is missing, malformed, or not the one the secrets were sealed with."""

    exit_code = 30
    default_hint = ("set FLEET_SECRET_KEY (32 bytes, base64) or FLEET_KEY_FILE to the key the registry was "
                    "created with; a shared PostgreSQL registry needs the same key on every machine")


class RegistryUnavailable(FleetError):
    """The registry's database cannot be opened or did not answer."""

    exit_code = 31
    http_status = 503  # fleet serve's own database: not the client's fault
    default_hint = ("check --db / FLEET_DB (e.g. sqlite:///fleet.sqlite or postgresql+psycopg://user@host/db) "
                    "and that the database server is running")


class RegistryDamaged(RegistryUnavailable):
    """The registry's SQLite file is not a database, or is damaged."""

    exit_code = 34
    default_hint = ("restore the last backup: 'fleet registry restore BACKUP' (make backups with 'fleet registry "
                    "backup FILE'; docs/environment.md says where the registry lives)")


class RegistryReadOnly(RegistryUnavailable):
    """The registry cannot be written: a read-only file or folder, or a read-only connection."""

    exit_code = 35
    default_hint = ("the registry's file and its folder must be writable by you (SQLite writes a -wal and a -shm "
                    "file beside it); check their owner and permissions, or point --db / FLEET_DB elsewhere")


class AccessDenied(FleetError):
    """The operator may not act in that kommune."""

    exit_code = 32
    http_status = 403  # a token asking for another kommune by name (?kommune=K)
    default_hint = ("act for the device's kommune (--kommune / FLEET_KOMMUNE), or ask a fleet admin for the "
                    "cross-kommune role (FLEET_ROLE=cross-kommune)")


class NetworkServerError(FleetError):
    """A network server (ChirpStack, OS2iot) refused a request or could not be reached."""

    exit_code = 33
    default_hint = "check --url (e.g. http://chirpstack:8090, the REST API's address) and that it is running"


class PayloadDecodeError(FleetError):
    """An uplink payload that is not a valid Bysans frame; `offset` is the byte where decoding failed."""

    default_hint = ("check the FPort and that the device runs Bysans firmware with payload format v1 "
                    "(docs/formats/payload.md); 'fleet codec decode HEX' shows where it breaks")

    def __init__(self, message: str, *, offset: int, hint: str | None = None):
        super().__init__(f"{message} (byte {offset})", hint=hint)
        self.offset = offset


# -- LoRaWAN frames and keys (fleet/lorawan, fleet/cli/lorawan.py); exit codes 40-44. Never echo a key. --

class LoRaWANKeyError(UsageError):
    """A LoRaWAN key (AppKey, NwkSKey, AppSKey) that is not 16 bytes of hex; the value is never echoed."""

    default_hint = ("a LoRaWAN key is 32 hex digits (16 bytes), e.g. as ChirpStack or OS2iot shows it; "
                    "pass it by environment variable (FLEET_NWKSKEY, FLEET_APPSKEY, FLEET_APPKEY) to keep it "
                    "out of the shell history")


class LoRaWANFrameError(FleetError):
    """A PHYPayload that cannot be decoded or built: wrong length, unknown type, bad field."""

    exit_code = 40
    default_hint = ("give the whole PHYPayload (MHDR to MIC) in hex, as a gateway or the network server's "
                    "frame log shows it (base64 from a packet forwarder: decode it to hex first)")


class LoRaWANMicError(LoRaWANFrameError):
    """A join-accept whose MIC does not match under the given AppKey."""

    exit_code = 41
    default_hint = "check that the AppKey is this device's and that the frame is whole"


# ---- board files (fleet/boards.py) ----

class BoardInvalid(UsageError):
    """A board file that breaks the schema or contradicts itself; `problems` lists every finding."""

    default_hint = ("fix the board file (docs/formats/board.md describes every field); "
                    "'fleet boards check FILE' checks it again")

    def __init__(self, path, problems, *, hint: str | None = None):
        self.problems = list(problems)
        n = len(self.problems)
        more = f" (and {n - 1} more)" if n > 1 else ""
        super().__init__(f"board file {path}: {self.problems[0]}{more}", hint=hint)


# -- telemetry: ingest, health, alerts, status, API tokens (fleet/telemetry, fleet/registry/tokens.py);
#    exit codes 90-99 --

class IngestError(FleetError):
    """Ingest cannot go on as asked (a bad --broker URL, a format it does not know)."""

    exit_code = 90
    default_hint = "'fleet ingest mqtt --help' shows the options and an example"


class BrokerUnavailable(IngestError):
    """The MQTT broker could not be reached or refused the connection."""

    exit_code = 91
    default_hint = ("check --broker (e.g. mqtt://127.0.0.1:1883) and that the broker runs; a username and "
                    "password go in the URL or in FLEET_MQTT_USERNAME / FLEET_MQTT_PASSWORD")


class MalformedUplink(FleetError):
    """An uplink event that cannot be stored: `reason` is one of MALFORMED_REASONS (counted by ingest)."""

    exit_code = 92
    http_status = 422
    default_hint = ("check that the network server sends the event unchanged (ChirpStack v4 or The Things "
                    "Stack v3 JSON, see docs/ingest.md), on FPort 1, from an enrolled device")

    def __init__(self, reason: str, message: str, *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.reason = reason


class TokenInvalid(FleetError):
    """An API token that is missing, unknown, malformed or revoked. The token itself is never echoed."""

    exit_code = 93
    http_status = 401
    default_hint = ("send 'Authorization: Bearer TOKEN' with a token from 'fleet tokens create --kommune K' "
                    "(it is shown once; create a new one if it is lost)")


class AlertDeliveryError(FleetError):
    """A webhook or MQTT alert target that cannot be used as given."""

    exit_code = 94
    default_hint = "give --webhook http(s)://HOST/PATH or --alert-topic TOPIC (on the ingest broker)"


# -- OTA serving and rollouts (fleet/rollout, fleet/serve/routes/ota.py, fleet/cli/rollout.py); exit codes 60-69 --

class RolloutError(FleetError):
    """A rollout cannot be started or changed as asked."""

    exit_code = 60
    default_hint = "'fleet rollout status --kommune K' shows the rollouts and their states"


class RolloutNotFound(RolloutError):
    """No rollout matches (none started for that kommune, or another id)."""

    exit_code = 61
    default_hint = "start one with 'fleet rollout start --release V --kommune K --repo DIR'"


class RolloutConflict(RolloutError):
    """A rollout for the same kommune and board is still open (running, paused or halted)."""

    exit_code = 62
    default_hint = "finish it first: 'fleet rollout abort --kommune K' (or resume it)"


class ReleaseNotPublished(RolloutError):
    """The release named for a rollout is not in the update repository."""

    exit_code = 63
    default_hint = ("publish it first ('fleet release publish REL --repo DIR') and give the same --repo "
                    "(or FLEET_REPO)")


class CheckinRejected(RolloutError):
    """A device check-in that is not authenticated (docs/ota.md, "Check-in keys"); `reason` is one of
    CHECKIN_REJECT_REASONS. Nothing of it was recorded. Never carries key material."""

    exit_code = 64
    http_status = 401

    def __init__(self, reason: str, message: str, *, device: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.reason = reason
        self.device = device


class CheckinForbidden(CheckinRejected):
    """An authentic check-in whose board claims a kommune that is not the device's own (the registry's, or
    for a device the registry does not hold, the one it first checked in for): HTTP 403."""

    http_status = 403


CHECKIN_REJECT_REASONS = ("missing_mac", "bad_mac", "replay", "no_key", "unknown_key", "unknown_device",
                          "wrong_kommune")


# -- the simulated air and the test network server (fleet/sim/devices/air.py, lab/netserver.py);
#    exit codes 70-79 --

class AirError(FleetError):
    """The packet-forwarder side cannot work as asked: a UDP port taken, an address that does not resolve."""

    exit_code = 70
    default_hint = ("give another port (0 picks a free one) or check the address; the network server and "
                    "`fleet sim start --forwarder HOST:PORT` must name the same UDP port")


# -- the node's cycle on virtual boards and scenarios (fleet/sim/scenario.py); exit codes 80-89 --

class ScenarioError(UsageError):
    """A scenario file that cannot drive a virtual board: bad JSON, an unknown quantity, a bad time."""

    exit_code = 80
    default_hint = "docs/formats/scenario.md describes scenario files; scenarios/ has examples"


# -- flashing and provisioning over serial (provisioning/, fleet/cli/{flash,station}.py);
#    exit codes 50-59. Never put file contents (credentials) in a message. --

class ImageMismatch(FleetError):
    """A base image that is not an ESP image, or one built for another chip than the board's."""

    exit_code = 50
    default_hint = ("download the MicroPython image for the board's chip (micropython.org/download: ESP32_GENERIC "
                    "for esp32, ESP32_GENERIC_S3 for esp32s3); 'fleet boards show BOARD' shows the chip")


class WrongBoard(FleetError):
    """The board on the port is not the board named on the command line."""

    exit_code = 51
    default_hint = "check --board against the board on the port ('fleet boards list'); nothing was written"


class TransferFailed(FleetError):
    """Files could not be written and verified, even after the retries."""

    exit_code = 52
    default_hint = ("check the cable and run the same command again: files already verified are not sent again, "
                    "and no file on the board is ever left half written")


class VerifyError(TransferFailed):
    """A file on the board does not hash to what was sent (the old file was kept)."""

    exit_code = 53
    default_hint = ("run the same command again; if it keeps failing the board's flash may be full or worn: "
                    "erase it and flash the base image again")


class FlashToolError(FleetError):
    """esptool could not talk to the chip's ROM bootloader or write the image."""

    exit_code = 54
    default_hint = ("hold the board's BOOT button while pressing RESET (download mode), close serial monitors, "
                    "and try again ('fleet sim bootloader NAME' on a virtual board)")


class WrongMode(FlashToolError):
    """The board is in the other mode: running its app where its ROM loader was wanted, or the reverse."""

    exit_code = 56
    default_hint = ("download mode: hold BOOT, press and release RESET, release BOOT ('fleet sim bootloader NAME' "
                    "on a virtual board); back to the app: press RESET ('fleet sim reset NAME')")


class FilesystemTooBig(UsageError):
    """The app and config do not fit the board's vfs partition; refused before any byte is written."""

    exit_code = 57
    default_hint = "build a smaller app (fleet release build checks the board's app_budget), or a board with more flash"


class SelfTestFailed(FleetError):
    """The app was written and verified, but the board's self-test failed."""

    exit_code = 55
    default_hint = ("the files are on the board; check the sensors' wiring and the board file's addresses, then "
                    "run 'fleet flash' again to repeat the self-test")
