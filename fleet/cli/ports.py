"""A --port as provisioning takes it: a path, or, for a virtual board (`sim:NAME`, or the path of a running
one), a provisioning.transfer.PortRef that follows the board to its new pty when it is unplugged and
plugged in again (a real port keeps its path: /dev/serial/by-id/...).

The simulator is known here, in the CLI, and not in provisioning: there a virtual board is a port.
A port that does not exist is refused at once (PortNotFound), its hint naming the ports that do.
"""

import os

from ..errors import FleetError, PortNotFound


def virtual_port(board):
    """A PortRef that follows a running virtual board (fleet.sim.manager's) to its current pty."""
    from provisioning.transfer import PortRef

    def follow():
        try:
            return board.status().get("port")
        except FleetError:
            return None

    return PortRef(follow=follow, name=board.name)


def virtual_board(port: str):
    """The running virtual board behind `sim:NAME` or its pty, else None (a real port)."""
    from ..sim import manager

    if port.startswith("sim:"):
        return manager.get(port[4:])
    for b in manager.running():
        try:
            if b.port == port or os.path.realpath(port) == b.port:
                return b
        except FleetError:
            continue
    return None


def port_ref(port: str):
    """`sim:NAME` or the pty of a running virtual board -> virtual_port(); an existing path -> the path;
    anything else: PortNotFound at once, the hint naming the ports that do exist."""
    from provisioning.transfer import PortRef

    b = virtual_board(port)
    if b is not None:
        return virtual_port(b)
    if not os.path.exists(port):
        raise PortNotFound(f"cannot open serial port {port}: there is no such port", hint=ports_hint())
    return PortRef(path=port)


def port_path(port: str) -> str:
    """The path a --port names now: sim:NAME -> the board's pty (PortNotFound while it has none), a path as
    it is (opening it says whether it exists: see with_ports_hint)."""
    if not port.startswith("sim:"):
        return port
    path = port_ref(port).current()
    if path is None:
        raise PortNotFound(f"cannot open serial port {port}: there is no such port", hint=ports_hint())
    return path


def with_ports_hint(e: PortNotFound) -> PortNotFound:
    """The same error, its hint naming the ports that exist."""
    return PortNotFound(e.message, hint=ports_hint())


def ports_hint(running=None) -> str:
    """The serial ports that exist (pyserial's list, with their USB descriptions) and the running virtual
    boards, as a hint."""
    from serial.tools import list_ports

    from ..sim import manager

    found = []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        what = p.description if p.description and p.description != "n/a" else ""
        if p.vid is not None:
            what = f"{what} [USB {p.vid:04X}:{p.pid:04X}]".strip()
        found.append(f"{p.device} ({what})" if what else p.device)
    for b in manager.running() if running is None else running:
        try:
            found.append(f"sim:{b.name} ({b.port}, a virtual board)")
        except FleetError:
            continue
    if not found:
        return ("no serial port is there at all: plug the board in (a USB cable that only charges shows no "
                "port) or start a virtual board ('fleet sim start')")
    return "the serial ports here: " + ", ".join(found) + "; check the cable if the board is not among them"



def rom_options(board) -> dict:
    """What provisioning.flash.flash(via="image") needs to reach a board's ROM loader: a virtual board has no
    modem lines (rom_only), and its RESET button is the simulator's (reset: waits until the
    interpreter has mounted its filesystem, so the REPL that checks the files is not interrupted while it
    starts). A real board (board None): esptool's own reset lines. Both run esptool's stub."""
    if board is None:
        return {"rom_only": False, "reset": None}

    def reset():
        import time

        board.reset()
        board.wait_booted()
        # input is held until boot.py starts; a Ctrl-C in its first moments can wedge a virtual board
        # (docs/virtual-board.md), so the REPL check starts a moment after the app does
        deadline = time.monotonic() + 10
        while board.status()["state"] != "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)

    return {"rom_only": True, "reset": reset}
