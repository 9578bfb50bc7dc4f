"""A --port as provisioning takes it: a path, or, for a virtual board (`sim:NAME`, or the path of a running
one), a provisioning.transfer.PortRef that follows the board to its new pty when it is unplugged and
plugged in again (a real port keeps its path: /dev/serial/by-id/...).

The simulator is known here, in the CLI, and not in provisioning: there a virtual board is a port.
"""

import os

from ..errors import FleetError


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
    """`sim:NAME` or the pty of a running virtual board -> virtual_port(); anything else -> the path."""
    from provisioning.transfer import PortRef

    b = virtual_board(port)
    return virtual_port(b) if b is not None else PortRef(path=port)


def rom_options(board) -> dict:
    """What provisioning.flash.flash(via="image") needs to reach a board's ROM loader: a virtual board has no
    modem lines and runs no stub (rom_only), and its RESET button is the simulator's (reset: waits until the
    interpreter has mounted its filesystem, so the REPL that checks the files is not interrupted while it
    starts). A real board (board None): esptool's own reset lines and stub."""
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
