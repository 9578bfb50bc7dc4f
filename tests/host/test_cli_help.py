"""Every fleet command explains itself: --help works and shows an example (the users are not Python experts)."""

import click
from click.testing import CliRunner

from fleet.cli import cli


def _walk(cmd, path):
    yield path, cmd
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):  # the top level loads its commands when asked (fleet/cli/__init__.py)
            sub = cmd.get_command(ctx, name)
            if sub is not None:
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


def test_every_command_module_is_found_by_its_name():
    # the top-level group imports a command's module by the command's name: the two must agree
    import importlib
    import pkgutil

    import fleet.cli

    found = {}
    for m in pkgutil.iter_modules(fleet.cli.__path__):
        cmd = getattr(importlib.import_module(f"fleet.cli.{m.name}"), "command", None)
        if cmd is not None:
            found[m.name.replace("_", "-")] = cmd.name
    assert len(found) > 15 and all(k == v for k, v in found.items()), found
    ctx = click.Context(cli)
    assert set(found) <= set(cli.list_commands(ctx))
    assert all(cli.get_command(ctx, name) is not None for name in found)
    assert cli.get_command(ctx, "common") is None and cli.get_command(ctx, "nosuch") is None


def test_listing_devices_loads_only_what_it_needs():
    # a process start costs its imports: `fleet devices list` must not load the server, MQTT, rich,
    # cryptography or Alembic (each is imported where it is used)
    import subprocess
    import sys

    code = ("import sys; from fleet.cli import cli; import click; ctx = click.Context(cli); "
            "cli.get_command(ctx, 'devices'); cli.get_command(ctx, 'status'); "
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('rich', 'cryptography', 'alembic', 'paho', 'starlette', 'hypercorn'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [], out
