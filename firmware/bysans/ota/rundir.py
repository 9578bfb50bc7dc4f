# Where a slot's code runs from (bysans.ota.slots.activate and boot, at boot only): the ROM (a `romfs`
# partition, mounted at /rom by MicroPython) when it holds that very release, else the slot's directory.
# Kept out of bysans.ota.slots, which the OTA client imports while its heap is at its peak.
import sys

from bysans.ota.slots import _p, slot_dir

ROM = "rom"  # where MicroPython mounts a `romfs` partition (/rom)


def same_file(x, y):
    """Whether files x and y hold the same bytes (read 256 at a time; False when either is missing)."""
    try:
        fx = open(x, "rb")
    except OSError:
        return False
    try:
        fy = open(y, "rb")
    except OSError:
        fx.close()
        return False
    with fx, fy:
        while True:
            a, b = fx.read(256), fy.read(256)
            if a != b:
                return False
            if not a:
                return True


def run_dir(slot, root="/"):
    """Where `slot`'s code runs from: the ROM (a `romfs` partition, mounted at /rom by MicroPython) when
    it holds that very release (the slot's signed manifest, byte for byte), since code there runs in place
    and takes little heap; else the slot's directory. An updated release runs from its slot until the ROM
    holds it too (docs/ota.md, "ROMFS")."""
    d = slot_dir(slot, root)
    rom = _p(root, ROM)
    if slot and same_file(_p(d, "manifest.json"), _p(rom, "manifest.json")):
        return rom
    return d


def follow(slot, root):
    # on a board with ROMFS, the ROM holds the slot that runs (bysans.ota.romfs)
    if slot and root == "/" and run_dir(slot, root) != _p(root, ROM):
        try:
            from bysans.ota import romfs

            romfs.follow(slot_dir(slot, root), _p(root, ROM))
        except Exception as e:  # noqa: BLE001 - the slot still runs, from the filesystem
            sys.print_exception(e)
