"""Collects MicroPython test modules (`mp_test_*.py`) and runs them under the `micropython` binary.

Each module runs in one interpreter; each `def test_*()` in it is one pytest item whose failure shows the
MicroPython traceback. A module may ask for interpreter options in a comment line: `# mp: -X heapsize=64K`.

A module that measures heap says so with a line `# mp32:`: its tests run a second time, as `test_x[32bit]`,
on the 32-bit MicroPython (objects and pointers as on an ESP32: docs/boards.md), with the module's heap or
the smallest board's (TTGO LoRa32), whichever is smaller. Without the 32-bit build those are skipped, and the
run says so (tests/mp32support.py).
"""

import ast
import json
import os
import subprocess
from pathlib import Path

import pytest

from fleet.resources import firmware_dir, micropython_path

HERE = Path(__file__).parent
ROM = Path(__file__).resolve().parents[2] / "fleet" / "sim" / "rom"  # cryptolib's stand-in for the 32-bit build
MARK = "@@MPTEST "
BITS32 = "[32bit]"


def _is_mp_test(path):
    return path.suffix == ".py" and path.name.startswith("mp_test_")


def pytest_collect_file(parent, file_path):
    # A path named on the command line goes through the Python plugin instead (see below).
    if _is_mp_test(file_path) and not parent.session.isinitpath(file_path):
        return MPModule.from_parent(parent, path=file_path)
    return None


def pytest_pycollect_makemodule(module_path, parent):
    if _is_mp_test(module_path):
        return MPModule.from_parent(parent, path=module_path)
    return None


class MPFailure(Exception):
    pass


class MPModule(pytest.File):
    def collect(self):
        tree = ast.parse(self.path.read_text(), str(self.path))
        self._names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
        self._results = {}
        for name in self._names:
            yield MPItem.from_parent(self, name=name)
        if any(line.startswith("# mp32:") for line in self.path.read_text().splitlines()):
            for name in self._names:
                yield MPItem.from_parent(self, name=name + BITS32)

    def _options(self):
        opts = []
        for line in self.path.read_text().splitlines():
            if line.startswith("# mp:"):
                opts += line[len("# mp:"):].split()
        return opts

    def _options32(self):
        import mp32support

        opts, heap = [], mp32support.smallest_board_heap()
        it = iter(self._options())
        for o in it:
            if o == "-X":
                x = next(it)
                if x.startswith("heapsize="):
                    own = x[len("heapsize="):]
                    if mp32support.heap_bytes(own) < mp32support.heap_bytes(heap):
                        heap = own
                    continue
                opts += ["-X", x]
            else:
                opts.append(o)
        return ["-X", f"heapsize={heap}", *opts]

    def results(self, bits32=False):
        if bits32 not in self._results:
            if bits32:
                import mp32support

                cmd = [mp32support.require(), *self._options32()]
            else:
                cmd = [micropython_path(), *self._options()]
            cmd += [str(HERE / "_mprunner.py"), str(firmware_dir()), str(self.path.parent), self.path.stem,
                    *self._names]
            env = {**os.environ, "BYSANS_ROM": str(ROM)} if bits32 else None
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
            results, crash = {}, None
            captured = []
            for line in proc.stdout.splitlines():
                if line.startswith(MARK):
                    r = json.loads(line[len(MARK):])
                    r["output"] = "\n".join(captured)
                    results[r["name"]] = r
                    captured = []
                elif line != "@@MPTEST-DONE":
                    captured.append(line)
            if "@@MPTEST-DONE" not in proc.stdout:
                crash = (f"micropython exited with code {proc.returncode} before finishing the module\n"
                         + "\n".join(captured) + "\n" + proc.stderr)
            self._results[bits32] = (results, crash)
        return self._results[bits32]


class MPItem(pytest.Item):
    funcargs: dict = {}  # pytest-embedded's hooks read this from every item

    def runtest(self):
        bits32 = self.name.endswith(BITS32)
        results, crash = self.parent.results(bits32)
        r = results.get(self.name[:-len(BITS32)] if bits32 else self.name)
        if r is None:
            raise MPFailure(crash or "no result")
        if r["output"]:
            print(r["output"])
        if r["status"] == "SKIP":
            pytest.skip(r["detail"])
        if r["status"] == "FAIL":
            raise MPFailure(r["detail"])

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, pytest.fail.Exception):  # e.g. the 32-bit build, required and missing
            return str(excinfo.value)
        if isinstance(excinfo.value, MPFailure):
            return "MicroPython traceback:\n" + str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.path.name}::{self.name} (micropython)"
