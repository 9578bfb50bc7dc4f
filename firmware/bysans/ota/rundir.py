# Boot-only slot work (bysans.ota.slots.boot): a slot's code runs from its directory; on a board
# whose slots are ROMFS images (bysans.ota.romfs) boot.py has mounted them at /a and /b, so the code runs
# in place from flash; a slot held as files there instead (provisioned over serial) is made its image first
# (follow). And start, main.py's first step. Kept out of bysans.ota.slots, which the OTA client imports while
# its heap is at its peak.
import sys

from bysans.ota.slots import exists, slot_dir


def _mounted(d):
    try:
        import vfs

        return any(m[1] == d for m in vfs.mount())
    except (ImportError, AttributeError, TypeError):
        return False


def _rom_mapped():
    # whether this MicroPython maps a ROMFS segment (vfs.rom_ioctl), asked before bysans.ota.romfs is imported:
    # on a board without one, every boot would otherwise load it (and its imports) only to find none, and the
    # names it interns stay in the heap for good (about 0.7 KB on the 64-bit port) beside the app
    try:
        import vfs

        return vfs.rom_ioctl(1) > 0
    except (ImportError, AttributeError, OSError):
        return False


def follow(slot, root):
    # On a board with ROM slots, a slot that boots from files becomes its image (bysans.ota.romfs.adopt)
    d = slot_dir(slot, root)
    if not slot or root != "/" or _mounted(d) or not exists(d + "/manifest.json") or not _rom_mapped():
        return
    try:
        from bysans.ota import romfs

        if romfs.partition() is not None:
            romfs.adopt(slot, root)
    except Exception as e:  # noqa: BLE001 - the slot still runs, from its files
        sys.print_exception(e)


def start():
    """main.py's first step (docs/ota.md, step 5): bysans.ota.slots.boot with the board: choose the slot,
    count a trial's boot, self-test, confirm or roll back. main.py runs on a board's own boots only, never
    after the raw REPL's soft reset (a REPL session), so no session counts. A failure is printed; the app
    runs all the same."""
    try:
        from bysans.hal import board
        from bysans.ota.slots import boot

        boot(board())
    except Exception as e:  # noqa: BLE001 - the board must still reach its app and its REPL
        sys.print_exception(e)
