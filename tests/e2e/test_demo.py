"""README's ./scripts/demo works: three boards answer with the app they run, and nothing is left running."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_a_virtual_fleet_end_to_end():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("sha256 ok") == 3
    assert r.stdout.count("bysans") >= 3
    assert "stopped vb1, vb2, vb3" in r.stdout
