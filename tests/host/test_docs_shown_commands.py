"""The `fleet` commands docs/ shows without running them still exist as shown.

A ```console block runs in tests/e2e/test_docs_commands.py. A ```sh block is a command a reader adapts to
their own installation (a production broker or database, a server that runs until stopped, a clone): it
cannot run here, so each `fleet` line in one is checked against the CLI instead: its subcommands and every
option it gives exist, so a renamed or removed option fails here and not in a reader's terminal.
"""

import re
import shlex
from pathlib import Path

import click
import pytest

from fleet.cli import cli

DOCS = Path(__file__).resolve().parents[2] / "docs"
SHOWN = re.compile(r"```(?:sh|bash|shell)\n(.*?)```", re.S)


def shown_fleet_lines():
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        for block in SHOWN.findall(page.read_text()):
            text = block.replace("\\\n", " ")
            for line in text.splitlines():
                words = shlex.split(line, comments=True)
                for cmd in _commands(words):
                    found.append((f"{page.relative_to(DOCS)}: {' '.join(cmd)}", cmd))
    return found


def _commands(words):
    """The `fleet ...` commands in a shell line (split at &&, ||, ;, |)."""
    out, cur = [], None
    for w in words + [";"]:
        if w in ("&&", "||", ";", "|"):
            if cur:
                out.append(cur)
            cur = None
        elif cur is not None:
            cur.append(w)
        elif w == "fleet":
            cur = []
    return out


LINES = shown_fleet_lines()


def test_the_docs_show_fleet_commands_in_sh_blocks():
    assert len(LINES) >= 10  # the check below checks something


@pytest.mark.parametrize("where,args", LINES, ids=[w for w, _ in LINES])
def test_a_shown_command_and_its_options_exist(where, args):
    ctx = click.Context(cli)
    cmd, rest = cli, list(args)
    while isinstance(cmd, click.Group):
        assert rest, f"{where}: names a group, not a command"
        name = rest.pop(0)
        cmd = cmd.get_command(ctx, name)
        assert cmd is not None, f"{where}: no command '{name}'"
    opts = {o for p in cmd.params for o in [*p.opts, *p.secondary_opts]}
    given = [w.split("=", 1)[0] for w in rest if w.startswith("-") and not re.fullmatch(r"-\d.*", w)]
    unknown = [o for o in given if o not in opts]
    assert not unknown, f"{where}: {cmd.name} has no {', '.join(unknown)}"
