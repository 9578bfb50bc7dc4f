# MicroPython side of the firmware test fixture (runs under the `micropython` binary).
# usage: micropython _mprunner.py FIRMWARE_DIR TEST_DIR MODULE [TEST_NAME ...]
# Prints one marker line per test:  @@MPTEST {"name": ..., "status": PASS|FAIL|SKIP, "detail": ...}
import sys
import io
import json


SkipTest = None


def _run(mod, name):
    buf = io.StringIO()
    try:
        getattr(mod, name)()
        status = "PASS"
    except SkipTest as e:
        status = "SKIP"
        buf.write(str(e))
    except BaseException as e:  # noqa: B036 - a test may raise anything, even SystemExit
        status = "FAIL"
        sys.print_exception(e, buf)
    print("@@MPTEST " + json.dumps({"name": name, "status": status, "detail": buf.getvalue()}))


def _cryptolib():
    # The 32-bit unix port is built without cryptolib, which an ESP32 has: the virtual board's stand-in
    # (BYSANS_ROM: set by the fixture for those runs)
    import os

    rom = os.getenv("BYSANS_ROM")
    if not rom:
        return
    try:
        import cryptolib  # noqa: F401
    except ImportError:
        sys.path.append(rom)
        import _cryptolib

        sys.modules["cryptolib"] = _cryptolib
        sys.path.pop()


def main():
    fw, tdir, modname = sys.argv[1], sys.argv[2], sys.argv[3]
    _cryptolib()
    sys.path[:0] = [tdir, fw]
    global SkipTest
    from mptest import SkipTest
    names = sys.argv[4:]
    mod = __import__(modname)
    for name in names:
        _run(mod, name)
    print("@@MPTEST-DONE")


main()
