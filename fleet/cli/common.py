"""What every command shares: error reporting, JSON output.

Errors go to stderr: as an 'error:' line and a 'hint:' line, or, when the command was given --json, as one
JSON object {"error", "hint", "exit_code", "kind"} on one line, so that a script reads them the same way it
reads the command's output. The exit codes are the named errors' own (fleet/errors.py).
"""

import json
import os
import signal
import sys
import threading

import click

from ..errors import FleetError


def run_cli(group, argv=None):
    """Runs the click group; a FleetError becomes one 'error:' line, a 'hint:' line and its exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in args
    previous = _second_interrupt_stops_at_once()
    try:
        return group.main(args=argv, prog_name="fleet", standalone_mode=False)
    except FleetError as e:
        _fail(as_json, e.message, e.hint, e.exit_code, type(e).__name__)
    except click.exceptions.Abort:
        _fail(as_json, "aborted", None, 130, "Aborted")
    except click.ClickException as e:
        if as_json:
            _fail(True, e.format_message(), _usage_hint(e), e.exit_code, type(e).__name__)
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    finally:
        if previous is not None and signal.getsignal(signal.SIGINT) is previous[1]:
            signal.signal(signal.SIGINT, previous[0])  # not interrupted: as it was (for callers in-process)


def _second_interrupt_stops_at_once():
    """The first Ctrl-C raises KeyboardInterrupt as usual (a command says what state it leaves); a second
    one, while that is being handled (or while the process ends), ends the process at once. Returns (the
    handler it replaced, its own), or None when it left Python's own alone (not the main thread, or a handler
    of someone else's)."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is not signal.default_int_handler:
        return None

    def on_sigint(signum, frame):
        signal.signal(signal.SIGINT, lambda *_: _stop_now())
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    return previous, on_sigint


def _stop_now():
    os.write(2, b"error: interrupted again: stopped at once, in whatever state the work was\n"
                b"hint: run the same command again to finish it\n")
    os._exit(130)


def _fail(as_json: bool, message: str, hint: str | None, code: int, kind: str):
    if as_json:
        click.echo(json.dumps({"error": message, "hint": hint, "exit_code": code, "kind": kind}), err=True)
    else:
        click.echo(f"error: {message}", err=True)
        if hint:
            click.echo(f"hint: {hint}", err=True)
    sys.exit(code)


def _usage_hint(e: click.ClickException) -> str | None:
    ctx = getattr(e, "ctx", None)
    return f"'{ctx.command_path} --help' lists the options" if ctx is not None else None


def echo_json(obj):
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))
