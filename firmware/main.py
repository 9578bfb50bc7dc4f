# Runs on a board's real boots only (MicroPython skips it after the raw REPL's soft reset: mpremote's,
# provisioning's), after boot.py has put the last confirmed slot on sys.path. First the boot logic from that
# slot: bysans.ota.slots chooses the slot, counts a trial slot's boots, self-tests it and confirms or rolls
# back (docs/ota.md), so a REPL session never does. Then the node app, from the slot chosen; everything that
# changes lives in the bysans package.
import sys

try:
    from bysans.hal import board
    from bysans.ota import slots

    slots.boot(board())
except Exception as e:  # noqa: BLE001 - the board must still reach its app and its REPL
    sys.print_exception(e)
board = slots = e = None  # these are boot.py's globals too: the slot logic must not stay beside the app
from bysans import app  # noqa: E402

app.main()
