"""The `fleet` command: a thin layer of click commands over the library.

Every module in this package that defines `command` (a click command or group) is one top-level command.
"""

import importlib
import pkgutil

import click

from .. import __version__
from .common import run_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fleet")
def cli():
    """Flash, enroll, update and track ESP32/LoRaWAN sensor nodes.

    \b
    Example:
      fleet sim start --count 3     # three virtual boards to try things on
      fleet sim list
    """


for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "common":
        _cmd = getattr(importlib.import_module(f"{__name__}.{_mod.name}"), "command", None)
        if _cmd is not None:
            cli.add_command(_cmd)


def main(argv=None):
    return run_cli(cli, argv)
