"""README's ./scripts/demo works and shows the product: every `$ ...` line it prints is exactly a command it
ran (a real `fleet` command, or mpremote), and each ended well; the readings were stored, the rollout ended
with two bins on 1.1.0 and the third rolled back by its self-test; the files it points to exist; and it
leaves nothing behind (no board, no server, no temporary folder)."""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from e2e_tools import BIN

ROOT = Path(__file__).resolve().parents[2]


def _demo_dirs():
    return set(Path(tempfile.gettempdir()).glob("bysans-demo-*"))


def _fleet_command_exists(args: list[str]) -> bool:
    """`fleet GROUP [SUB]` names a real command: its --help answers."""
    words = [a for a in args[1:3] if not a.startswith("-")]
    r = subprocess.run([str(BIN / "fleet"), *words, "--help"], capture_output=True, text=True, timeout=60)
    return r.returncode == 0 and "Usage: fleet " + " ".join(words) in r.stdout


@pytest.mark.timeout(480)  # about 1 min on an idle 2-core machine; more when other suites run beside it
def test_demo_shows_the_product_and_runs_what_it_prints(tmp_path):
    before = _demo_dirs()
    record = tmp_path / "ran.json"
    env = dict(os.environ, COLUMNS="200")
    env.pop("BYSANS_SIM_DIR", None)  # the demo makes its own
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--record", str(record)],
                       capture_output=True, text=True, timeout=450, env=env)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert out.rstrip().endswith("demo ok"), out[-2000:]

    # what it printed is what it ran, each command ending well
    rec = json.loads(record.read_text())
    ran = rec["ran"]
    printed = [ln[2:] for ln in out.splitlines() if ln.startswith("$ ")]
    assert printed == [c["line"] for c in ran]
    assert all(c["returncode"] in (0, None) for c in ran), ran
    assert [c["line"] for c in ran if c["returncode"] is None] == ["fleet serve --repo updates --port 0 &"]
    import shlex

    for c in ran:
        args = shlex.split(c["line"].removesuffix(" &"))
        assert args[0] in ("fleet", "mpremote"), c
        if args[0] == "fleet":
            assert _fleet_command_exists(args), c["line"]
    lines = [c["line"] for c in ran]
    for needed in ("fleet enroll --kommune 751 --csv pallet.csv", "fleet station", "fleet ota enable",
                   "fleet rollout start", "fleet rollout status", "fleet status --kommune 751"):
        assert any(ln.startswith(needed) for ln in lines), needed

    # the story's outcome
    assert len(re.findall(r"-> [0-9A-F]{16}: [1-9]\d* uplinks pushed", out)) == 3, out
    assert "confirmed 2, failed 0, rolled back 1" in out and "SELFTEST: battery" in out, out
    assert "/dashboard" in out and '"devices": 3' in out

    # it points only to files that exist
    for path in set(re.findall(r"\b((?:docs|scripts|tests|firmware|fleet)/[\w./-]+\.(?:md|py|json))", out)):
        assert (ROOT / path).exists(), path

    # nothing left behind: its folder is gone, and no process runs in it
    assert _demo_dirs() <= before and not Path(rec["sandbox"]).exists()
    left = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and os.readlink(p / "cwd").startswith(rec["sandbox"]):
                left.append((p.name, (p / "cmdline").read_bytes()))
        except OSError:
            continue
    assert not left, left
