"""The `fleet` command: a thin layer of click commands over the library.

Every module in this package that defines `command` (a click command or group) is one top-level command,
named as its module ('-' for '_'). A command's module is imported only when that command runs (or help lists
them all): `fleet devices list` does not load the server, MQTT or the release signer.
"""

import importlib
import pkgutil

import click

from .. import __version__
from .common import run_cli


class _Commands(click.Group):
    """Commands found by module name and imported when asked for."""

    def list_commands(self, ctx):
        return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(__path__) if m.name not in _HELPERS)

    def get_command(self, ctx, name):
        if name in self.commands:
            return self.commands[name]
        module = name.replace("-", "_")
        if module in _HELPERS or not any(m.name == module for m in pkgutil.iter_modules(__path__)):
            return None
        cmd = getattr(importlib.import_module(f"{__name__}.{module}"), "command", None)
        if cmd is not None:
            self.commands[name] = cmd
        return cmd


_HELPERS = frozenset({"common", "output", "ports", "rollout_lorawan"})  # modules of the CLI that are no command


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fleet")
def cli():
    """Flash, enroll, update and track ESP32/LoRaWAN sensor nodes.

    \b
    Example:
      fleet sim start --count 3     # three virtual boards to try things on
      fleet sim list
    """


def main(argv=None):
    return run_cli(cli, argv)
