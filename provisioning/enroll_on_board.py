"""`fleet enroll --port` as a library: the board's identity read over serial, its credentials written to it.

    record, identity, board = enroll_on_board(reg, op, NewDevice(...), port)

The DevEUI is the EUI-64 of the chip's factory MAC where the board has one (an ESP32 always; a virtual
board when its board file gives a "mac"), else random. The board gets two files (three with WiFi), written with the same
verified, atomic transfer as the app (provisioning.enrollment.board_config):

    /config/lorawan.json   {"dev_eui", "join_eui", "app_key", "activation", "version"}  -- holds the AppKey
    /config/device.json    {"name", "kommune", "site", "kind", "board", "sensors"}
    /config/wifi.json      {"networks": [{"ssid", "password"}]}  -- only when the registry holds networks for
                           the device's site or kommune and its board has WiFi (provisioning.wifi)

The AppKey and WiFi passwords are in no message, log or return value of this module (only in the file on the board).
"""

import dataclasses
import json

from fleet import boards, device_spec
from fleet.boards import Board
from fleet.registry import NewDevice

from .enrollment import enroll_board
from .wifi import WIFI_PATH, wifi_file

LORAWAN_PATH = device_spec.LORAWAN_CONFIG
DEVICE_PATH = device_spec.DEVICE_CONFIG


def config_files(config: dict) -> dict[str, bytes]:
    """The files a board keeps from enrollment.board_config()."""
    def dump(obj):
        return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()

    files = {LORAWAN_PATH: dump(config["lorawan"]), DEVICE_PATH: dump(config["device"])}
    if config.get("wifi"):
        files[WIFI_PATH] = wifi_file(config["wifi"]["networks"])
    return files


def read_board(port, *, board: Board | str | None = None, retries: int = 3, baudrate: int = 115200) -> dict:
    """The board's identity (provisioning.board.BoardIdentity as a dict); WrongBoard when `board` (a Board
    or a board name) is given and the board on the port is not that board."""
    from .board import check_board, identify
    from .transfer import with_retries

    if board and not isinstance(board, Board):
        board = boards.get(board)

    def run(session, attempt):
        ident = identify(session)
        if board:
            check_board(ident, board, session.port)
        return ident.as_dict()

    return with_retries(port, run, retries=retries, baudrate=baudrate)


def enroll_on_board(registry, operator, new: NewDevice, port, *, join_eui=None, retries: int = 3,
                    baudrate: int = 115200, progress=None, ident: dict | None = None):
    """Enrolls the board on `port`: returns (record, identity, board identity dict). `new.board` may be
    empty: the board's own board file names it then. Nothing is recorded when writing the board fails."""
    from .transfer import PortRef, write_files

    ref = PortRef.of(port)
    state = {"stage": "reading", "dev_eui": None}  # goes with a KeyboardInterrupt: where it stopped
    try:
        ident = ident or read_board(ref, board=new.board or None, retries=retries, baudrate=baudrate)
        if not new.board:
            new = dataclasses.replace(new, board=ident["board"] or "")

        def write_board(config):
            state.update(stage="writing", dev_eui=config["lorawan"]["dev_eui"])
            write_files(ref, config_files(config), retries=retries, baudrate=baudrate, progress=progress)
            state["stage"] = "written"

        record, identity = enroll_board(registry, operator, new, mac=ident["mac"], join_eui=join_eui,
                                        write_board=write_board)
    except KeyboardInterrupt as e:
        e.enroll_state = state
        raise
    return record, identity, ident
