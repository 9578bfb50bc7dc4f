"""Enrollment: a device's identity and credentials, recorded in the registry; one board or a pallet (CSV).

One board (the flash station and `fleet enroll --port` call this):

    rec = enroll_board(reg, op, NewDevice(kommune="751", site="...", kind="waste", board="esp32-sx1262"),
                       mac=chip_mac, write_board=write_credentials)

  1. checks everything (kommune, access, position, DevEUI not yet enrolled) — nothing touched yet;
  2. records the device as 'enrolling' (a short transaction: the unique DevEUI makes a second,
     concurrent enrollment of the same board fail here with Conflict, before its board is touched);
  3. calls `write_board(board_config(identity, record, wifi))` — the caller's serial step (`wifi`: the
     networks the registry holds for the device's site and kommune, when its board has WiFi);
  4. marks the device 'enrolled'; if step 3 raised, removes the reservation again (audited) and re-raises.

A pallet: `enroll_csv(reg, op, path)` reads and validates the WHOLE file — every problem with its line and
column — before one row is written, then records all devices in one transaction. The CSV format is in
CSV_COLUMNS (shown by `fleet enroll --help`).
"""

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fleet import boards as _boards
from fleet.errors import Conflict, CsvInvalid, FleetError, UsageError
from fleet.exports import os2iot
from fleet.identifiers import Identity, parse_app_key, parse_eui, parse_mac
from fleet.registry import DeviceRecord, NewDevice, Operator, Registry, check_new_device, lookup
from fleet.registry.api import check_position
from fleet.store.models import KINDS

from .identity import new_identity

# column -> (required, what it holds)
CSV_COLUMNS = {
    "kommune": (True, "kommunekode (751 or 0751) or name"),
    "site": (True, "where the device is mounted"),
    "kind": (True, "waste or env"),
    "board": (False, "board name from boards/ (else --board)"),
    "latitude": (False, "WGS84 degrees (with longitude)"),
    "longitude": (False, "WGS84 degrees (with latitude)"),
    "mac": (False, "the chip's 48-bit MAC: DevEUI = its EUI-64"),
    "dev_eui": (False, "16 hex digits, when the board comes with one"),
    "join_eui": (False, "16 hex digits (else --join-eui / FLEET_JOIN_EUI)"),
    "app_key": (False, "32 hex digits, when the vendor preloaded one (else a new random key)"),
    "sensors": (False, "sensor names separated by ';' or spaces"),
    "name": (False, "device name (else kind-kommune-DevEUI tail)"),
}
_ALIASES = {"lat": "latitude", "lon": "longitude", "lng": "longitude", "deveui": "dev_eui",
            "joineui": "join_eui", "appkey": "app_key", "kommunekode": "kommune"}


@dataclass(frozen=True)
class Problem:
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        col = f", column '{self.column}'" if self.column else ""
        return f"line {self.line}{col}: {self.message}"


@dataclass(frozen=True)
class Planned:
    """A validated CSV row, ready to record."""

    line: int
    device: NewDevice
    identity: Identity
    eui_column: str = "dev_eui"   # the column the DevEUI came from (mac, dev_eui), for messages


# -- one board ------------------------------------------------------------------------------------------

def board_config(identity: Identity, record: DeviceRecord, wifi: list[dict] | None = None) -> dict:
    """What the board must hold to join and to say who it is, and the WiFi networks it may join (when
    given: board_wifi()). Contains the AppKey and WiFi passwords: write it to the board, never to a log."""
    config = {"lorawan": {"dev_eui": identity.dev_eui, "join_eui": identity.join_eui,
                          "app_key": identity.app_key.hex().upper(), "activation": "otaa", "version": "1.0.3"},
              "device": {"name": record.name, "kommune": record.kommune_kode, "site": record.site,
                         "kind": record.kind, "board": record.board, "sensors": list(record.sensors)}}
    if wifi:
        config["wifi"] = {"networks": list(wifi)}
    return config


def board_wifi(registry: Registry, operator: Operator, record: DeviceRecord) -> list[dict]:
    """The WiFi networks the registry holds for the device's site and kommune (Registry.wifi_for), when its
    board has WiFi; [] otherwise. Holds passwords."""
    try:
        board = _boards.get(record.board)
    except FleetError:
        return []
    if not board.definition.get("wifi"):
        return []
    return registry.wifi_for(operator, record.kommune_kode, record.site, purpose="enroll", dev_eui=record.dev_eui)


def enroll_board(registry: Registry, operator: Operator, new: NewDevice, *, mac=None, dev_eui=None,
                 join_eui=None, app_key=None,
                 write_board: Callable[[dict], None] | None = None) -> tuple[DeviceRecord, Identity]:
    """Creates the identity, reserves the DevEUI, lets `write_board` write the credentials, and records
    the device as enrolled. Returns (record, identity). See the module's docstring for the order."""
    if write_board is None:
        identity = _checked_identity(registry, operator, new, mac, dev_eui, join_eui, app_key)
        return registry.add_device(operator, new, identity, note="registry only"), identity
    record, identity = reserve(registry, operator, new, mac=mac, dev_eui=dev_eui, join_eui=join_eui,
                               app_key=app_key)
    try:
        write_board(board_config(identity, record, board_wifi(registry, operator, record)))
    except BaseException:
        release(registry, operator, identity.dev_eui)
        raise
    try:
        return confirm(registry, operator, identity.dev_eui), identity
    except KeyboardInterrupt:  # the board holds its credentials, read back: the record must say so
        confirm(registry, operator, identity.dev_eui)
        raise


def _checked_identity(registry, operator, new, mac, dev_eui, join_eui, app_key) -> Identity:
    values = check_new_device(new)
    if problem := os2iot.name_problem(new.name):
        raise UsageError(f"name: {problem}", hint="give a shorter --name (OS2iot takes at most 50 characters)")
    operator.require(values["kommune_kode"], "enroll devices")
    identity = new_identity(mac=mac, dev_eui=dev_eui, join_eui=join_eui, app_key=app_key)
    if registry.existing_dev_euis([identity.dev_eui]):
        raise Conflict(f"DevEUI {identity.dev_eui} is already enrolled",
                       hint="'fleet devices show " + identity.dev_eui + "' shows it; a board is enrolled once")
    return identity


def reserve(registry: Registry, operator: Operator, new: NewDevice, *, mac=None, dev_eui=None, join_eui=None,
            app_key=None) -> tuple[DeviceRecord, Identity]:
    """Steps 1 and 2 of enroll_board: the device checked and recorded as 'enrolling'. The caller then writes
    the board (board_config) and calls confirm(), or release() when the board was not written: the image
    route (fleet station) learns the chip's MAC inside its esptool session and confirms only after the
    board's files were read back."""
    identity = _checked_identity(registry, operator, new, mac, dev_eui, join_eui, app_key)
    registry.add_device(operator, new, identity, state="enrolling", note="reserved; writing the board")
    return registry.get_device(operator, identity.dev_eui), identity


def confirm(registry: Registry, operator: Operator, dev_eui: str) -> DeviceRecord:
    """Step 4: the board holds its credentials, read back: the device is 'enrolled'."""
    return registry.update_device(operator, dev_eui, state="enrolled", note="board written")


def release(registry: Registry, operator: Operator, dev_eui: str):
    """The board was not written: the reservation is removed again (audited)."""
    registry.remove_device(operator, dev_eui, note="enrollment aborted: the board was not written")


# -- a pallet -------------------------------------------------------------------------------------------

def read_csv(path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(line number, fields)]): UTF-8 (a BOM is fine), ',' or ';' as separator."""
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"no such file: {p}") from None
    except UnicodeDecodeError as e:
        line = p.read_bytes()[:e.start].count(b"\n") + 1
        raise CsvInvalid(p, [Problem(line, None, "not UTF-8 text (save the sheet as 'CSV UTF-8')")]) from None
    first = text.split("\n", 1)[0]
    delim = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True)
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields_ in reader:
            rows.append((reader.line_num, fields_))
    except csv.Error as e:
        raise CsvInvalid(p, [Problem(reader.line_num, None, f"not valid CSV: {e}")]) from None
    rows = [(n, f) for n, f in rows if any(x.strip() for x in f)]
    if not rows:
        raise CsvInvalid(p, [Problem(1, None, "the file is empty: it needs a header line and one line per board")])
    (_, header), body = rows[0], rows[1:]
    return header, body


def plan_csv(registry: Registry, operator: Operator, path, *, default_board: str | None = None,
             join_eui=None) -> list[Planned]:
    """Reads and validates the whole file; returns one Planned per row or raises CsvInvalid listing every
    problem. Touches nothing (reads the registry to find DevEUIs already enrolled)."""
    header, body = read_csv(path)
    problems: list[Problem] = []
    cols = []
    for h in header:
        key = h.strip().lower().replace(" ", "_").replace("-", "_")
        key = _ALIASES.get(key, key)
        if key not in CSV_COLUMNS:
            problems.append(Problem(1, h, f"unknown column (known: {', '.join(CSV_COLUMNS)})"))
        elif key in cols:
            problems.append(Problem(1, h, "column given twice"))
        cols.append(key)
    for c, (required, _) in CSV_COLUMNS.items():
        if required and c not in cols:
            problems.append(Problem(1, None, f"missing the required column '{c}'"))
    if "board" not in cols and not default_board:
        problems.append(Problem(1, None, "no 'board' column and no default board (--board)"))
    if problems:
        raise CsvInvalid(path, problems)
    if not body:
        raise CsvInvalid(path, [Problem(1, None, "only a header: no boards to enroll")])
    known_boards = set(_boards.names())
    planned: list[Planned] = []
    first_line: dict[str, int] = {}
    for line, raw in body:
        if len(raw) != len(cols):
            problems.append(Problem(line, None, f"{len(raw)} fields, the header has {len(cols)}"))
            continue
        row = {c: v.strip() for c, v in zip(cols, raw)}
        p = _plan_row(line, row, operator, default_board, join_eui, known_boards, problems)
        if p is None:
            continue
        eui = p.identity.dev_eui
        if eui in first_line:
            problems.append(Problem(line, p.eui_column, f"DevEUI {eui} is also on line {first_line[eui]}"))
            continue
        first_line[eui] = line
        planned.append(p)
    taken = registry.existing_dev_euis(p.identity.dev_eui for p in planned)
    for p in planned:
        if p.identity.dev_eui in taken:
            problems.append(Problem(p.line, p.eui_column, f"DevEUI {p.identity.dev_eui} is already enrolled"))
    if problems:
        raise CsvInvalid(path, sorted(problems, key=lambda x: x.line))
    return planned


def _plan_row(line, row, operator, default_board, join_eui, known_boards, problems) -> Planned | None:
    n_before = len(problems)

    def bad(col, msg):
        problems.append(Problem(line, col, msg))

    def number(col):
        v = row.get(col) or ""
        if not v:
            return None
        try:
            return float(v.replace(",", ".")) if v.count(",") == 1 and "." not in v else float(v)
        except ValueError:
            bad(col, f"'{v}' is not a number")
            return None

    board = row.get("board") or default_board
    if known_boards and board and board not in known_boards:
        bad("board", f"unknown board '{board}' (known: {', '.join(sorted(known_boards))})")
    try:
        kode = lookup(row.get("kommune", "")).kode
        operator.require(kode, "enroll devices")
    except FleetError as e:
        bad("kommune", e.message)
    site = row.get("site", "")
    if not site:
        bad("site", "empty: say where the device is mounted")
    elif len(site) > 200:
        bad("site", "longer than 200 characters")
    kind = row.get("kind", "").lower()
    if kind not in KINDS:
        bad("kind", f"'{row.get('kind', '')}' is not one of: {', '.join(KINDS)}")
    lat, lon = number("latitude"), number("longitude")
    if not any(p.column in ("latitude", "longitude") for p in problems[n_before:]):
        try:
            check_position(lat, lon)
        except FleetError as e:
            bad("longitude" if lat is not None and lon is None else "latitude", e.message)
    name = row.get("name") or None
    if name and (problem := os2iot.name_problem(name)):  # the network server's own rule (fleet.exports)
        bad("name", problem)
    sensors = tuple(s for s in row.get("sensors", "").replace(";", " ").split() if s)
    new = NewDevice(kommune=row.get("kommune", ""), site=site, kind=kind, board=board or "", latitude=lat,
                    longitude=lon, sensors=sensors, name=name)
    parsers = {"mac": parse_mac, "dev_eui": parse_eui, "join_eui": lambda v: parse_eui(v, "JoinEUI"),
               "app_key": parse_app_key}
    for col, parse in parsers.items():
        if row.get(col):
            try:
                parse(row[col])
            except FleetError as e:
                bad(col, e.message)
    if len(problems) != n_before:
        return None
    try:
        ident = new_identity(mac=row.get("mac") or None, dev_eui=row.get("dev_eui") or None,
                             join_eui=row.get("join_eui") or join_eui, app_key=row.get("app_key") or None)
    except FleetError as e:  # a MAC and a DevEUI that disagree
        bad("dev_eui", e.message)
    if len(problems) != n_before:
        return None
    return Planned(line, new, ident, "mac" if row.get("mac") and not row.get("dev_eui") else "dev_eui")


def enroll_csv(registry: Registry, operator: Operator, path, *, default_board: str | None = None,
               join_eui=None) -> list[tuple[DeviceRecord, Identity]]:
    """Validates the whole file (CsvInvalid: nothing written), then records every row in one transaction
    (Conflict if a DevEUI got enrolled meanwhile: nothing written). Returns (record, identity) per row."""
    planned = plan_csv(registry, operator, path, default_board=default_board, join_eui=join_eui)
    records = registry.add_devices(operator, [(p.device, p.identity) for p in planned],
                                   note=f"enrolled from {Path(path).name}")
    return list(zip(records, (p.identity for p in planned)))
