"""Board definitions: one JSON file per board in boards/, looked up by name and checked against a schema;
the chips they can carry.

    board = boards.get("heltec_v3")      # a Board: loaded and checked once, then passed down
    board.chip.esptool, board.chip.image_id, board.mpy_arch, board.flash_offset

`SCHEMA` is JSON Schema (draft 2020-12 keywords, a subset: type, properties, required,
additionalProperties, items, enum, minimum, maximum, pattern, minItems, maxItems), checked here by a small
validator so the host needs no extra dependency; `check()` adds what a schema cannot say (the chip decides
the arch, HAL and image offset; sensors sit on buses the board has; no I2C address or pin is used twice).
docs/formats/board.md describes every field.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BoardInvalid, NotFound
from . import device_spec
from .resources import boards_dir

REQUIRED = ("name", "title", "chip", "mpy_arch", "hal", "flash")
SENSOR_TYPES = device_spec.SENSOR_TYPES  # the firmware has a driver for each (firmware/bysans/device_spec.py)


@dataclass(frozen=True)
class Chip:
    """A chip family, as every tool names it, and what a board carrying it runs."""

    name: str                       # the board files' name for it
    esptool: str | None             # esptool's CHIP_NAME; None: no ROM loader to talk to
    image_id: int | None            # esp_chip_id_t in an ESP image's header; None: runs no ESP image
    mpy_arch: str | None = None     # mpy-cross -march=; None: no board file may name the chip (yet)
    hal: str | None = None          # the firmware's HAL for it
    base_offset: int | None = None  # where the MicroPython base image goes in flash (REFERENCE.md section 5)


# Every chip the tools may meet: an image or a board can be for a chip no board file names, and is then
# refused by its name. Adding a chip for boards is giving it an arch, a HAL and an offset here.
CHIPS = {c.name: c for c in (
    Chip("esp32", "ESP32", 0, "xtensawin", "esp32", 0x1000),
    Chip("esp32s2", "ESP32-S2", 2),
    Chip("esp32c3", "ESP32-C3", 5),
    Chip("esp32s3", "ESP32-S3", 9, "xtensawin", "esp32", 0x0),
    Chip("esp32c2", "ESP32-C2", 12),
    Chip("esp32c6", "ESP32-C6", 13),
    Chip("esp32h2", "ESP32-H2", 16),
    Chip("virtual", None, None, "x64", "virtual", 0x0),
)}
BOARD_CHIPS = [c for c in CHIPS.values() if c.mpy_arch]  # the chips a board file may name


def chip_of_image(image_id: int) -> Chip | None:
    """The chip an ESP image's header names (esp_chip_id_t), None when unknown."""
    return next((c for c in CHIPS.values() if c.image_id == image_id), None)


VIRTUAL_ARCHS = ("x64", "x86")  # the 64-bit unix port in .venv, or the 32-bit build (docs/boards.md)


MAX_I2C_HZ = {"sps30": 100_000}  # the SPS30 datasheet allows I2C up to 100 kHz

_PIN = {"type": "integer", "minimum": 0, "maximum": 48}
_ADDR7 = {"type": "integer", "minimum": 0x08, "maximum": 0x77}
SCHEMA = {
    "type": "object",
    "required": list(REQUIRED),
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_]{0,31}$"},
        "title": {"type": "string"},
        "chip": {"enum": [c.name for c in BOARD_CHIPS]},
        # a virtual board: the chip whose ROM and flash it imitates
        "imitates": {"enum": [c.name for c in BOARD_CHIPS if c.hal == "esp32"]},
        "mpy_arch": {"enum": list(dict.fromkeys([c.mpy_arch for c in BOARD_CHIPS] + list(VIRTUAL_ARCHS)))},
        "hal": {"enum": list(dict.fromkeys(c.hal for c in BOARD_CHIPS))},
        "heap": {"type": "string", "pattern": r"^[0-9]+[KM]?$"},  # docs/boards.md: the figures, sourced
        "app_budget": {"type": "integer", "minimum": 65536},  # flash bytes one release may take
        "app_slots": {"enum": [1, 2]},  # app slots its vfs holds (default 2: the OTA's a/ and b/)
        # where the slots live: "vfs" (littlefs files, the default) or "romfs" (ROMFS images in the halves of the
        # table's romfs partition: bysans/ota/romfs.py; app_budget is then one half, counted in image bytes)
        "app_store": {"enum": ["vfs", "romfs"]},
        # the MicroPython build a real board needs: its port's generic build (the default), or one of ours, a
        # board build folder under boards/micropython/ (docs/boards.md: the TTGO's wake fits only with ROMFS and
        # the firmware's names frozen)
        "micropython": {"type": "string", "pattern": r"^(generic|[A-Z][A-Z0-9_]{0,47})$"},
        "mac": {"type": "string", "pattern": r"^[0-9a-f]{12}$"},
        # the USB-UART's top baud rate, what `fleet flash` writes at (docs/formats/board.md: the chip's datasheet)
        "usb_baud": {"type": "integer", "minimum": 115200, "maximum": 5_000_000},
        "flash": {
            "type": "object", "required": ["size", "offset"], "additionalProperties": False,
            "properties": {"size": {"type": "integer", "minimum": 1 << 20}, "offset": {"type": "integer", "minimum": 0},
                           "block_size": {"enum": [4096]}, "partitions": {"type": "string"}}},
        "i2c": {"type": "array", "items": {
            "type": "object", "required": ["id", "sda", "scl", "freq"], "additionalProperties": False,
            "properties": {"id": {"type": "integer", "minimum": 0, "maximum": 1}, "sda": _PIN, "scl": _PIN,
                           "freq": {"type": "integer", "minimum": 10_000, "maximum": 1_000_000}}}},
        "spi": {"type": "array", "items": {
            "type": "object", "required": ["id", "sck", "mosi", "miso"], "additionalProperties": False,
            "properties": {"id": {"type": "integer", "minimum": 1, "maximum": 2}, "sck": _PIN, "mosi": _PIN,
                           "miso": _PIN}}},
        "uart": {"type": "array", "items": {
            "type": "object", "required": ["id", "tx", "rx"], "additionalProperties": False,
            "properties": {"id": {"type": "integer", "minimum": 1, "maximum": 2}, "tx": _PIN, "rx": _PIN,
                           "baud": {"type": "integer", "minimum": 300, "maximum": 5_000_000}}}},
        "radio": {
            "type": "object", "required": ["chip"],
            "properties": {"chip": {"enum": ["sx1276", "sx1262", "virtual"]}, "spi": {"type": "integer"},
                           "nss": _PIN, "rst": _PIN, "busy": _PIN, "dio0": _PIN, "dio1": _PIN, "dio2": _PIN,
                           "tcxo_v": {"type": "number", "minimum": 1.6, "maximum": 3.3},
                           "dio2_rf_switch": {"type": "boolean"}, "dcdc": {"type": "boolean"},
                           "rssi_dbm": {"type": "integer", "minimum": -140, "maximum": 0},
                           "snr_db": {"type": "number", "minimum": -20, "maximum": 20}}},
        "sensors": {"type": "array", "items": {
            "type": "object", "required": ["type", "bus"], "additionalProperties": False,
            "properties": {"type": {"enum": list(SENSOR_TYPES)},
                           "bus": {"type": "string", "pattern": r"^(i2c[0-1]|uart[1-2])$"},
                           "address": _ADDR7, "mode": {"enum": ["controlled", "auto"]}, "int1_pin": _PIN}}},
        "battery": {
            "type": "object", "additionalProperties": False,
            "properties": {"adc_pin": _PIN, "enable_pin": _PIN, "enable_level": {"enum": [0, 1]},
                           "divider_ohm": {"type": "array", "minItems": 2, "maxItems": 2,
                                           "items": {"type": "integer", "minimum": 1}},
                           "pmu": {"enum": ["axp192", "axp2101"]}, "address": _ADDR7, "note": {"type": "string"}}},
        "power": {"type": "object", "additionalProperties": False,
                  "properties": {"vext_pin": _PIN, "vext_level": {"enum": [0, 1]}}},
        "led": _PIN,
        "wifi": {"type": "boolean"},
        "updates": {"enum": ["wifi", "lorawan", "none"]},
        "notes": {"type": "string"},
    },
    # Other parts of the system may add sections of their own (OTA partitions, radio settings).
    "additionalProperties": True,
}

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "number": (int, float), "integer": int}


def _schema_errors(value, schema, path="") -> list[str]:
    where = path or "the file"
    errors = []
    t = schema.get("type")
    if t is not None:
        ok = isinstance(value, _TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool))
        if not ok:
            return [f"{where}: expected {'an' if t[0] in 'aeiou' else 'a'} {t}, found {json.dumps(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {json.dumps(value)} is not one of {', '.join(json.dumps(v) for v in schema['enum'])}"]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{where}: {json.dumps(value)} does not match {schema['pattern']}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{where}: needs at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: takes at most {schema['maxItems']} items")
        for i, item in enumerate(value):
            errors += _schema_errors(item, schema.get("items", {}), f"{path}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where}: '{key}' is missing")
        for key, v in value.items():
            sub = f"{path}.{key}" if path else key
            if key in props:
                errors += _schema_errors(v, props[key], sub)
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{where}: unknown field '{key}' (known: {', '.join(props)})")
    return errors


def check(board: dict, *, name: str | None = None) -> list[str]:
    """Every problem found in a board definition (empty when it is fine)."""
    problems = _schema_errors(board, SCHEMA)
    if problems:
        return problems
    if name is not None and board["name"] != name:
        problems.append(f"name: '{board['name']}' differs from the file name '{name}'")
    chip = CHIPS[board["chip"]]
    arch, hal, offset = chip.mpy_arch, chip.hal, chip.base_offset
    if board["mpy_arch"] != arch and not (board["chip"] == "virtual" and board["mpy_arch"] in VIRTUAL_ARCHS):
        problems.append(f"mpy_arch: a {board['chip']} runs '{arch}' code, not '{board['mpy_arch']}'")
    if board["hal"] != hal:
        problems.append(f"hal: a {board['chip']} board uses the '{hal}' HAL, not '{board['hal']}'")
    if board["flash"]["offset"] != offset:
        problems.append(f"flash.offset: the base image of a {board['chip']} goes at {offset:#x}, "
                        f"not {board['flash']['offset']:#x}")
    build = board.get("micropython", "generic")
    if build != "generic" and not (boards_dir() / "micropython" / build).is_dir():
        problems.append(f"micropython: no board build '{build}' under boards/micropython/")
    if board.get("app_store") == "romfs" and board["chip"] != "virtual" and build == "generic":
        problems.append("app_store: 'romfs' needs a MicroPython built with ROMFS (MICROPY_VFS_ROM), which the "
                        "port's generic build is not: name the board build in 'micropython'")
    i2c = {b["id"]: b for b in board.get("i2c", [])}
    uart = {u["id"] for u in board.get("uart", [])}
    taken = set()
    for i, s in enumerate(board.get("sensors", [])):
        where = f"sensors[{i}] ({s['type']})"
        bus = s["bus"]
        is_uart = s["type"] == "jsn_sr04t"
        if is_uart != bus.startswith("uart"):
            problems.append(f"{where}: a {s['type']} sits on {'a UART' if is_uart else 'an I2C bus'}, not {bus}")
            continue
        if bus.startswith("i2c"):
            n = int(bus[3:])
            if n not in i2c:
                problems.append(f"{where}: the board has no I2C bus {n} (add it under \"i2c\")")
                continue
            if "address" not in s:
                problems.append(f"{where}: an I2C sensor needs its 'address'")
                continue
            if (n, s["address"]) in taken:
                problems.append(f"{where}: address {s['address']:#04x} on {bus} is already taken")
            taken.add((n, s["address"]))
            limit = MAX_I2C_HZ.get(s["type"])
            if limit and i2c[n]["freq"] > limit:
                problems.append(f"{where}: runs at most {limit // 1000} kHz, but {bus} is at "
                                f"{i2c[n]['freq'] // 1000} kHz")
        elif int(bus[4:]) not in uart:
            problems.append(f"{where}: the board has no UART {bus[4:]} (add it under \"uart\")")
    battery = board.get("battery")
    if battery is not None and ("adc_pin" in battery) == ("pmu" in battery):
        problems.append("battery: give either 'adc_pin' with 'divider_ohm', or 'pmu'")
    elif battery is not None and "adc_pin" in battery and "divider_ohm" not in battery:
        problems.append("battery: 'adc_pin' needs 'divider_ohm' ([to the battery, to ground] in ohms)")
    # a pin with two jobs
    uses = {}
    for b in board.get("i2c", []):
        uses.setdefault(b["sda"], []).append(f"i2c{b['id']}.sda")
        uses.setdefault(b["scl"], []).append(f"i2c{b['id']}.scl")
    for b in board.get("spi", []):
        for k in ("sck", "mosi", "miso"):
            uses.setdefault(b[k], []).append(f"spi{b['id']}.{k}")
    for u in board.get("uart", []):
        uses.setdefault(u["tx"], []).append(f"uart{u['id']}.tx")
        uses.setdefault(u["rx"], []).append(f"uart{u['id']}.rx")
    for k in ("nss", "rst", "busy", "dio0", "dio1", "dio2"):
        if k in board.get("radio", {}):
            uses.setdefault(board["radio"][k], []).append(f"radio.{k}")
    if battery:
        for k in ("adc_pin", "enable_pin"):
            if k in battery:
                uses.setdefault(battery[k], []).append(f"battery.{k}")
    for pin, jobs in sorted(uses.items()):
        if len(jobs) > 1:
            problems.append(f"GPIO {pin} is used twice: {', '.join(jobs)}")
    return problems


def names() -> list[str]:
    return sorted(p.stem for p in boards_dir().glob("*.json"))


def load_file(path) -> dict:
    """A board file from any path, checked (for a new board before it goes into boards/)."""
    path = Path(path)
    try:
        board = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotFound(f"no board file {path}")
    except json.JSONDecodeError as e:
        raise BoardInvalid(path, [f"not valid JSON: {e}"])
    if not isinstance(board, dict):
        raise BoardInvalid(path, ["expected a JSON object"])
    problems = check(board, name=path.stem)
    if problems:
        raise BoardInvalid(path, problems)
    return board


def load(name: str) -> dict:
    """The checked definition of board `name` as a dict (get() wraps it in a Board)."""
    path = boards_dir() / f"{name}.json"
    if not path.is_file():
        raise NotFound(f"unknown board '{name}'", hint=f"known boards: {', '.join(names())}")
    return load_file(path)


@dataclass(frozen=True)
class Board:
    """A checked board definition: load it once (get()) and pass it down. `definition` is the file as
    checked (what the device's /board.json is made from); the fields are what the host's code asks."""

    name: str
    chip: Chip
    mpy_arch: str
    hal: str
    flash_size: int
    flash_offset: int    # where the MicroPython base image goes
    definition: dict = field(repr=False, compare=False)

    @classmethod
    def of(cls, definition: dict) -> "Board":
        """A Board from a definition that passed check() (load() and load_file() return those)."""
        d = definition
        return cls(d["name"], CHIPS[d["chip"]], d["mpy_arch"], d["hal"], d["flash"]["size"], d["flash"]["offset"], d)

    @property
    def title(self) -> str:
        return self.definition["title"]

    @property
    def virtual(self) -> bool:
        return self.chip.name == "virtual"

    def device_copy(self) -> bytes:
        return device_copy(self.definition)


def get(name: str) -> Board:
    """Board `name` from boards/, checked: NotFound or BoardInvalid otherwise."""
    return Board.of(load(name))


def device_copy(board: dict) -> bytes:
    """The compact copy a device keeps as /board.json: what the firmware needs, no prose."""
    slim = {k: v for k, v in board.items() if k not in ("title", "notes")}
    if isinstance(slim.get("battery"), dict):
        slim["battery"] = {k: v for k, v in slim["battery"].items() if k != "note"}
    return json.dumps(slim, separators=(",", ":"), sort_keys=True).encode()


__all__ = ["BOARD_CHIPS", "CHIPS", "SCHEMA", "Board", "Chip", "check", "chip_of_image", "device_copy", "get", "load",
           "load_file", "names"]
