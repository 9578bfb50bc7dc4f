# The virtual board's boot ROM: mounts the board's own littlefs filesystem (the flash's `vfs` partition) at
# /, as an ESP32's firmware does, so nothing on the board reaches the host's files; then runs boot.py and
# main.py like a board: boot.py after every reset, main.py only when the REPL is the friendly one, never
# after a soft reset in the raw REPL (mpremote's, provisioning's: ports/esp32/main.c). The supervisor has
# already checked the flash as an ESP32's bootloader does.
# vboot.py (the interpreter's main script) calls start() with its globals: the REPL's, boot.py's and main.py's.
import sys
import os
import vfs
import _vboard
import esp32
import _netgate

_netgate.install(_vboard.wlan_gate)  # network, and a socket that needs it (fleet/sim/rom/_netgate.py)
del _netgate

try:
    import cryptolib
except ImportError:  # an interpreter built without it (the 32-bit unix port): the ROM's stand-in, as an
    import _cryptolib as cryptolib  # ESP32 has cryptolib built in (_cryptolib.py says what it costs)

    sys.modules["cryptolib"] = cryptolib


def _mount():
    # as MicroPython's flashbdev.py: the `vfs` partition of the flash (esp32.py: the table's, else the runtime one)
    bdev = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="vfs")[0]
    mounts = [m[1] for m in vfs.mount()]
    vfs.umount("/")
    if "/_vrom" in mounts:
        vfs.umount("/_vrom")  # the stand-ins are loaded; their code stays mapped
    try:
        vfs.mount(vfs.VfsLfs2(bdev), "/")
    except OSError:
        print("Performing initial setup")
        vfs.VfsLfs2.mkfs(bdev)
        vfs.mount(vfs.VfsLfs2(bdev), "/")
    # MicroPython 1.28 on an ESP32: mp_init() mounts a `romfs` partition at /rom and appends /rom and /rom/lib
    # (extmod/vfs.c), then ports/esp32/main.c appends /lib
    rom = ["/rom", "/rom/lib"] if "/rom" in mounts else []
    sys.path[:] = ["", ".frozen"] + rom + ["/lib"]
    os.chdir("/")


def _run(name, g):
    try:
        os.stat(name)
    except OSError:
        return
    _vboard.call("running")  # the supervisor passes serial input on from here
    try:
        exec(open(name).read(), g)
    except SystemExit:  # machine.soft_reset(), sys.exit(): a board soft-resets (no REPL in between)
        _vboard.send("soft")
    except BaseException as e:  # noqa: B036 - a board prints the traceback and goes on to the REPL
        sys.print_exception(e)


def start(g):
    _mount()
    sys.modules["vboot"] = None  # not importable from the board
    sys.modules.pop("_vboot", None)
    _vboard.call("booted")  # from here on the board reads its serial input (and Ctrl-C interrupts)
    _run("boot.py", g)
    if os.getenv("BYSANS_RAW") == "1":
        _vboard.call("repl")  # boot.py is done: what the interpreter prints next is its REPL's
    else:
        _run("main.py", g)
