# Runs before main.py on every boot. Kept tiny on purpose (DESIGN.md §2): it picks the app slot. The boot
# logic is imported from the last confirmed slot (ota/confirmed), then bysans.ota.slots chooses, counts a
# trial slot's boots, self-tests and confirms or rolls back (docs/ota.md). Without slots, nothing changes.
# On a board whose MicroPython has ROMFS the slots are ROMFS images in the halves of its `romfs` partition
# (bysans/ota/romfs.py): mounted here at /a and /b, unless the slot's files are on the filesystem.
import sys

try:
    import os
    import vfs

    _rom = memoryview(vfs.rom_ioctl(2, 0))  # no partition: an int (-EINVAL), or no rom_ioctl at all
    _h = len(_rom) // 8192 * 4096
    try:
        vfs.umount("/rom")  # mp_init mounted the whole partition (slot a's image) and put it on sys.path
    except OSError:
        pass
    sys.path[:] = [p for p in sys.path if p not in ("/rom", "/rom/lib")]
    for _s, _seg in (("/a", _rom[:_h]), ("/b", _rom[_h:2 * _h])):
        try:
            os.stat(_s + "/manifest.json")  # the slot's files (provisioned over serial): boot makes its image
        except OSError:
            try:
                vfs.mount(vfs.VfsRom(_seg), _s)
            except OSError:
                pass  # no image there (erased, or a cut write)
    del _rom, _h, _s, _seg
except Exception:  # noqa: BLE001 - no ROMFS on this board
    pass
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
