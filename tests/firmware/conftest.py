"""Collects MicroPython test modules (`mp_test_*.py`) and runs them under the `micropython` binary.

Each module runs in one interpreter; each `def test_*()` in it is one pytest item whose failure shows the
MicroPython traceback. A module may ask for interpreter options in a comment line: `# mp: -X heapsize=64K`.
"""

import ast
import json
import subprocess
from pathlib import Path

import pytest

from fleet.resources import firmware_dir, micropython_path

HERE = Path(__file__).parent
MARK = "@@MPTEST "


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
        self._results = None
        for name in self._names:
            yield MPItem.from_parent(self, name=name)

    def _options(self):
        opts = []
        for line in self.path.read_text().splitlines():
            if line.startswith("# mp:"):
                opts += line[len("# mp:"):].split()
        return opts

    def results(self):
        if self._results is None:
            cmd = [micropython_path(), *self._options(), str(HERE / "_mprunner.py"),
                   str(firmware_dir()), str(self.path.parent), self.path.stem, *self._names]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            self._results, self._crash = {}, None
            captured = []
            for line in proc.stdout.splitlines():
                if line.startswith(MARK):
                    r = json.loads(line[len(MARK):])
                    r["output"] = "\n".join(captured)
                    self._results[r["name"]] = r
                    captured = []
                elif line != "@@MPTEST-DONE":
                    captured.append(line)
            if "@@MPTEST-DONE" not in proc.stdout:
                self._crash = (f"micropython exited with code {proc.returncode} before finishing the module\n"
                               + "\n".join(captured) + "\n" + proc.stderr)
        return self._results


class MPItem(pytest.Item):
    funcargs: dict = {}  # pytest-embedded's hooks read this from every item

    def runtest(self):
        r = self.parent.results().get(self.name)
        if r is None:
            raise MPFailure(self.parent._crash or "no result")
        if r["output"]:
            print(r["output"])
        if r["status"] == "SKIP":
            pytest.skip(r["detail"])
        if r["status"] == "FAIL":
            raise MPFailure(r["detail"])

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MPFailure):
            return "MicroPython traceback:\n" + str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.path.name}::{self.name} (micropython)"
