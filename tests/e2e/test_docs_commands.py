"""The commands in docs/ really run.

Every ```console block in docs/*.md is executed: lines starting with `$ ` are commands (a trailing `\\`
continues one), the lines after them are sample output and are not compared. A page's blocks run in order,
in one shell, in a fresh sandbox: its own simulator root, registry, key directory and working directory.
A command expected to fail is marked with a comment starting `# fails`.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"```console\n(.*?)```", re.S)


def commands(text):
    cmds = []
    for block in BLOCK.findall(text):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("$ "):
                cmd = line[2:]
                while cmd.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    cmd = cmd + "\n" + lines[i]  # bash reads backslash-newline as a continuation
                cmds.append(cmd)
            i += 1
    return cmds


PAGES = sorted(p for p in DOCS.rglob("*.md") if "```console" in p.read_text())


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_commands_run(page, tmp_path):
    cmds = commands(page.read_text())
    assert cmds, f"{page} has a console block without commands"
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ,
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               BYSANS_SIM_DIR=str(tmp_path / "sim"),
               FLEET_DB=f"sqlite:///{tmp_path / 'registry.db'}",
               FLEET_KEYS_DIR=str(tmp_path / "keys"),
               FLEET_KEY_PASSPHRASE="correct horse battery staple",
               FLEET_OPERATOR="docs-test",
               XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               DOCS=str(DOCS), COLUMNS="120")
    try:
        for cmd in cmds:
            expect_fail = re.search(r"#\s*fails\b", cmd) is not None
            r = subprocess.run(["bash", "-c", "set -o pipefail\n" + cmd], cwd=work, env=env, capture_output=True,
                               text=True, timeout=180)
            if expect_fail:
                assert r.returncode != 0, f"{page.name}: expected to fail: $ {cmd}\n{r.stdout}"
            else:
                assert r.returncode == 0, f"{page.name}: $ {cmd}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
    finally:
        subprocess.run(["fleet", "sim", "stop", "--all"], env=env, capture_output=True, timeout=60)
