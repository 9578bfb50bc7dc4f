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


def port_ref(port: str):
    """`sim:NAME` or the pty of a running virtual board -> virtual_port(); anything else -> the path."""
    from provisioning.transfer import PortRef

    from ..sim import manager

    if port.startswith("sim:"):
        return virtual_port(manager.get(port[4:]))
    for b in manager.running():
        try:
            if b.port == port or os.path.realpath(port) == b.port:
                return virtual_port(b)
        except FleetError:
            continue
    return PortRef(path=port)
