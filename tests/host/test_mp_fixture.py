"""The firmware-test fixture reports MicroPython results faithfully: a failing MicroPython test fails in
pytest with the MicroPython traceback, a crash of the interpreter fails the remaining tests."""

import shutil
from pathlib import Path

FIRMWARE_TESTS = Path(__file__).resolve().parents[1] / "firmware"


def _project(pytester):
    d = pytester.path / "fw"
    d.mkdir()
    shutil.copy(FIRMWARE_TESTS / "conftest.py", d / "conftest.py")
    shutil.copy(FIRMWARE_TESTS / "_mprunner.py", d / "_mprunner.py")
    shutil.copy(FIRMWARE_TESTS / "mptest.py", d / "mptest.py")
    return d


def test_failures_show_the_micropython_traceback(pytester):
    d = _project(pytester)
    (d / "mp_test_demo.py").write_text(
        "def helper(x):\n    return x // 0\n\n"
        "def test_good():\n    assert 1 + 1 == 2\n\n"
        "def test_bad():\n    helper(3)\n\n"
        "def test_skipped():\n    from mptest import SkipTest\n    raise SkipTest('not on this port')\n")
    result = pytester.runpytest("-p", "no:cacheprovider", str(d))
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*MicroPython traceback:*", "*line 2, in helper*", "*ZeroDivisionError*"])


def test_interpreter_options_and_a_crash(pytester):
    d = _project(pytester)
    (d / "mp_test_heap.py").write_text(
        "# mp: -X heapsize=16K\n"
        "def test_small_heap():\n    b = bytearray(64 * 1024)\n\n"
        "def test_exit_is_a_failure_not_the_end():\n    import sys\n    sys.exit(3)\n\n"
        "def test_segfault():\n    import micropython\n\n"
        "    @micropython.viper\n    def poke():\n        p = ptr8(0)\n        p[0] = 1\n\n    poke()\n\n"
        "def test_never_reached():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", str(d))
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["*MemoryError*", "*SystemExit*", "*micropython exited with code -11*"])
