# Frozen into Bysans's MicroPython for the TTGO LoRa32: the port's own modules, and the firmware's names
# module, written at this build from the checkout's firmware/ by fleet/firmware_names.py with the build's own
# mpy-cross. Its names become qstrs in flash: the release's modules, loaded later, intern them without heap
# (docs/boards.md, "Heap"). makemanifest.py runs this file with this folder as the working directory.
import os
import subprocess
import sys
import tempfile

include("$(PORT_DIR)/boards/manifest.py")


def _mpy_cross():
    # makemanifest.py's own: $MICROPY_MPYCROSS, else the tree's (its -v MPY_DIR=... argument)
    if os.environ.get("MICROPY_MPYCROSS"):
        return os.environ["MICROPY_MPYCROSS"]
    for arg in sys.argv:
        if arg.startswith("MPY_DIR="):
            return os.path.join(arg[len("MPY_DIR="):], "mpy-cross", "build", "mpy-cross")
    raise SystemExit("manifest.py: no mpy-cross (set MICROPY_MPYCROSS)")


_repo = os.path.abspath(os.path.join("..", "..", ".."))
_out = tempfile.mkdtemp(prefix="bysans-names-")
subprocess.run([sys.executable, os.path.join(_repo, "fleet", "firmware_names.py"), _out,
                "--mpy-cross", _mpy_cross(), "--firmware", os.path.join(_repo, "firmware")],
               check=True, stdout=subprocess.DEVNULL)
module("bysans_names.py", base_path=_out)
