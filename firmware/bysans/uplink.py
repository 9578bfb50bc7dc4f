# Where uplink payloads go: a sink with send(fport, payload) that returns once the frame is handed over
# and raises OSError when it cannot be. An enrolled board with a radio sends through the LoRaWAN MAC
# (bysans.sink chooses, once per wake); otherwise a virtual board keeps each payload on its supervisor
# (`capture`, fleet/sim/hwbus.py) where tests and `fleet sim uplinks` read them back.
import binascii


class CaptureSink:
    """The virtual board's capture request, through its native module `_vboard`."""

    def __init__(self, vboard):
        self._vb = vboard

    def send(self, fport, payload):
        self._vb.call("capture %d %s" % (fport, binascii.hexlify(payload).decode()))


class ListSink:
    """Keeps (fport, bytes) in a list: for tests, and a stand-in where nothing can transmit."""

    def __init__(self):
        self.frames = []

    def send(self, fport, payload):
        self.frames.append((fport, bytes(payload)))


def default_sink(board):
    """The sink of a board that is not sending over LoRaWAN: the capture on a virtual board, else None."""
    try:
        import _vboard
    except ImportError:
        return None
    return CaptureSink(_vboard)
