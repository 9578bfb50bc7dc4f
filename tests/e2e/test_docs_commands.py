"""The commands in docs/ really run.

Every ```console block in docs/*.md is executed: lines starting with `$ ` are commands (a trailing `\\`
continues one), the lines after them are sample output and are not compared. A page's blocks run in order,
in one shell (as a reader types them into one terminal: a variable or `export` holds for the commands after
it, and a server started in the background with `&` keeps running), in a fresh sandbox: its own simulator
root, registry, key directory and working directory. A command expected to fail is marked with a comment
starting `# fails`. The page stops at its first command that does not end as expected; whatever it left
running in the background is stopped at the end.
"""

import os
import re
import signal
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


PAGE_TIMEOUT_S = 600


def expects_failure(cmd: str) -> bool:
    return re.search(r"#\s*fails\b", cmd) is not None


def script(cmds, out: Path) -> str:
    """One bash script for a page: each command in the same shell, its output and exit code in `out`,
    stopping at the first command that does not end as expected; background jobs stopped at the end."""
    lines = ["set -o pipefail", "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT"]
    for i, cmd in enumerate(cmds):
        lines.append(f"{{\n{cmd}\n}} > {out}/{i}.out 2> {out}/{i}.err")
        lines.append(f"echo $? > {out}/{i}.rc")
        bad = "-eq" if expects_failure(cmd) else "-ne"
        lines.append(f"[ \"$(cat {out}/{i}.rc)\" {bad} 0 ] && exit 100")
    lines.append("exit 0")
    return "\n".join(lines) + "\n"


def _read(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


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
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(["bash", "-c", script(cmds, out)], cwd=work, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        try:
            proc.wait(timeout=PAGE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for i, cmd in enumerate(cmds):
            rc_file = out / f"{i}.rc"
            shown = (f"{page.name}: $ {cmd}\n--- stdout\n{_read(out / f'{i}.out')}\n"
                     f"--- stderr\n{_read(out / f'{i}.err')}")
            assert rc_file.exists(), f"{page.name}: did not finish within {PAGE_TIMEOUT_S} s: $ {cmd}\n{shown}"
            rc = int(rc_file.read_text())
            if expects_failure(cmd):
                assert rc != 0, f"expected to fail: {shown}"
            else:
                assert rc == 0, f"exit code {rc}: {shown}"
    finally:
        subprocess.run(["fleet", "sim", "stop", "--all"], env=env, capture_output=True, timeout=60)
