# Runs before main.py on every boot. Kept tiny on purpose (DESIGN.md §2): it picks the app slot. The boot
# logic is imported from the last confirmed slot (ota/confirmed), then bysans.ota.slots chooses, counts a
# trial slot's boots, self-tests and confirms or rolls back (docs/ota.md). Without slots, nothing changes.
import sys

try:
    with open("/ota/confirmed") as f:
        sys.path[0] = "/" + f.read().strip()
except OSError:
    pass
try:
    from bysans.hal import board
    from bysans.ota import slots

    slots.boot(board())
    del board, slots  # main.py runs in these globals: the slot logic would stay in the heap beside the app
except Exception as e:  # noqa: BLE001 - the board must still reach main.py and its REPL
    sys.print_exception(e)
