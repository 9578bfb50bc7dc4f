# Runs after EVERY reset, also the soft reset mpremote and provisioning do when they take the raw REPL (then
# main.py does not run: ports/esp32/main.c). So it has no effect a REPL session must not have: it only puts
# the last confirmed slot (ota/confirmed) on sys.path, where main.py imports the boot logic from, and on a
# board whose MicroPython has ROMFS mounts the slots, ROMFS images in the halves of its `romfs` partition
# (bysans/ota/romfs.py), at /a and /b, unless the slot's files are on the filesystem. Doing it again changes
# nothing. Counting a trial slot's boots, its self-test, confirm and rollback are main.py's (docs/ota.md):
# bysans.ota.rundir.start, dropped before the app loads (main.py runs in these globals). main.py stays within
# 128 bytes, so littlefs keeps it inline: no 4 KiB block of its own in each slot (docs/boards.md, "App
# budget"). Kept tiny on purpose (DESIGN.md §2). Without slots, nothing changes.
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
