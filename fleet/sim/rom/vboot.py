# The virtual board's boot ROM: mounts the board's own littlefs filesystem at /, as an ESP32's firmware
# does, so nothing on the board reaches the host's files; then runs boot.py and main.py like a board.
# Run as: micropython -X heapsize=N -i vboot.py  (environment: BYSANS_HW, BYSANS_IMG, BYSANS_RAW)
import sys
import os
import vfs
import _vboard
import _netgate

_netgate.install(_vboard.wlan_gate)  # network, and a socket that needs it (fleet/sim/rom/_netgate.py)
del _netgate


def _mount():
    flash = _vboard.board["flash"]
    bdev = _vboard.BlockDevice(os.getenv("BYSANS_IMG"), flash["block_size"], flash["size"] // flash["block_size"])
    vfs.umount("/")
    try:
        vfs.mount(vfs.VfsLfs2(bdev), "/")
    except OSError:
        print("Performing initial setup")
        vfs.VfsLfs2.mkfs(bdev)
        vfs.mount(vfs.VfsLfs2(bdev), "/")
    sys.path[:] = ["", ".frozen", "/lib"]
    os.chdir("/")


def _run(name):
    try:
        os.stat(name)
    except OSError:
        return
    _vboard.call("running")  # the supervisor passes serial input on from here
    try:
        exec(open(name).read(), globals())
    except SystemExit:
        raise
    except BaseException as e:  # noqa: B036 - a board prints the traceback and goes on to the REPL
        sys.print_exception(e)


_mount()
sys.modules["vboot"] = None  # not importable from the board
_vboard.call("booted")  # from here on the board reads its serial input (and Ctrl-C interrupts)
if os.getenv("BYSANS_RAW") != "1":
    _run("boot.py")
    _run("main.py")
del _mount, _run, sys, os, vfs
