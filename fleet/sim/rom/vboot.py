# The virtual board's boot ROM, as the interpreter's main script: on the board's own interpreter
# (scripts/build-micropython32-rom) the ROM's stand-ins run in place from their ROMFS segment, memory-mapped
# outside the heap as an ESP32's C modules are (fleet/sim/vrom.py); elsewhere they load from this folder.
# _vboot does the rest. Run as: micropython -X heapsize=N -i vboot.py
# (environment: BYSANS_HW, BYSANS_IMG, BYSANS_RAW; BYSANS_VROM, BYSANS_ROMFS on the board's own interpreter)
import sys

try:
    import _vrom

    _seg = _vrom.standins()
    del _vrom
except ImportError:
    _seg = None
if _seg:
    import vfs

    vfs.mount(vfs.VfsRom(_seg), "/_vrom")
    sys.path[0] = "/_vrom"
    del vfs
del _seg
import _vboot

_vboot.start(globals())
del _vboot, sys
