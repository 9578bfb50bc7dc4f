"""The ESP32 board object cannot run here: check every machine/esp32 call it makes against
micropython-esp32-stubs with mypy, and prove the check catches a wrong call."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from fleet.resources import firmware_dir

HAL = firmware_dir() / "bysans" / "hal" / "esp32.py"
SPEC = firmware_dir() / "bysans" / "device_spec.py"  # the one firmware module the HAL imports


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    site = Path(sysconfig.get_paths()["purelib"])
    if not (site / "machine.pyi").exists():
        pytest.skip("micropython-esp32-stubs is not installed")
    d = tmp_path_factory.mktemp("stubs")
    for f in site.glob("*.pyi"):
        if f.name != "__builtins__.pyi":
            shutil.copy(f, d)
    shutil.copytree(site / "_mpy_shed", d / "_mpy_shed")
    return d


def mypy_errors(path: Path, stubs: Path) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--python-version", "3.11", "--no-site-packages", "--check-untyped-defs",
         "--no-error-summary", "--no-incremental", "--cache-dir", str(stubs / ".cache"), path.name],
        capture_output=True, text=True, cwd=path.parent, env={"MYPYPATH": str(stubs), "PATH": "/usr/bin:/bin"})
    # the stubs have findings of their own; only ours count
    return [line for line in proc.stdout.splitlines() if line.startswith(path.name + ":") and ": error:" in line]


def _beside(tmp_path: Path) -> Path:
    (tmp_path / "bysans").mkdir()
    (tmp_path / "bysans" / "__init__.py").write_text("")
    shutil.copy(SPEC, tmp_path / "bysans" / "device_spec.py")
    return tmp_path / "esp32.py"


def test_esp32_hal_matches_the_stubs(stubs, tmp_path):
    copy = _beside(tmp_path)
    shutil.copy(HAL, copy)
    assert mypy_errors(copy, stubs) == []


def test_the_stub_check_catches_a_wrong_call(stubs, tmp_path):
    bad = _beside(tmp_path)
    bad.write_text(HAL.read_text().replace("machine.deepsleep(ms)", "machine.deep_sleep(ms)"))
    assert bad.read_text() != HAL.read_text()
    errors = mypy_errors(bad, stubs)
    assert any("deep_sleep" in e for e in errors), errors
