"""What every command shares: error reporting, JSON output."""

import json
import sys

import click

from ..errors import FleetError


def run_cli(group, argv=None):
    """Runs the click group; a FleetError becomes one 'error:' line, a 'hint:' line and its exit code."""
    try:
        return group.main(args=argv, prog_name="fleet", standalone_mode=False)
    except FleetError as e:
        click.echo(f"error: {e.message}", err=True)
        if e.hint:
            click.echo(f"hint: {e.hint}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)


def echo_json(obj):
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))
