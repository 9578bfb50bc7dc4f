"""Every fleet command explains itself: --help works and shows an example (the users are not Python experts)."""

import click
from click.testing import CliRunner

from fleet.cli import cli


def _walk(cmd, path):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _walk(sub, path + [name])


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    missing = []
    commands = list(_walk(cli, []))
    assert len(commands) > 20
    for path, cmd in commands:
        r = runner.invoke(cli, path + ["--help"])
        assert r.exit_code == 0, (path, r.output)
        if "Example" not in r.output:
            missing.append(" ".join(["fleet", *path]))
    assert missing == [], f"commands whose help has no example: {missing}"


def test_version():
    r = CliRunner().invoke(cli, ["--version"])
    assert r.exit_code == 0 and r.output.startswith("fleet, version ")
