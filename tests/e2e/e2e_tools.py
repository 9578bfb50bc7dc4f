"""Helpers the end-to-end tests import by name (`from e2e_tools import run_fleet`): the real `fleet` and
`mpremote` commands of this environment, and a process check. Kept out of conftest.py: two folders of the
suite have a conftest module, and `from conftest import` picks whichever was loaded first."""

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def run_mpremote(port, *args, timeout=120, check=True):
    proc = subprocess.run([str(BIN / "mpremote"), "connect", port, *args], capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"mpremote {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_fleet(*args, timeout=120):
    return subprocess.run([str(BIN / "fleet"), *args], capture_output=True, text=True, timeout=timeout)
