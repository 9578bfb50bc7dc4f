"""`fleet sim`: virtual boards for trying things and for tests."""

import click

from ..sim import manager
from .common import echo_json


@click.group("sim")
def command():
    """Start, list, drive and stop virtual boards.

    A virtual board is the MicroPython unix port behind a serial port (a pseudo-terminal) with simulated
    sensors, flash and RTC memory. Every tool that talks to a USB board talks to it the same way.

    \b
    Example:
      fleet sim start --count 3
      mpremote connect "$(fleet sim list --json | jq -r '.[0].port')" ls
      fleet sim stop --all
    """


def _row(st):
    return [st["id"], st["port"], st["board"], st["state"], st["reset_cause"], str(st["baud"] or "-"),
            f"{st['speed']}x"]


def _table(rows, headers):
    from rich.console import Console
    from rich.table import Table

    t = Table(*headers)
    for r in rows:
        t.add_row(*r)
    Console().print(t)


@command.command("start")
@click.option("--count", "-n", default=1, show_default=True, type=click.IntRange(1, 64),
              help="How many boards to start (named vb1, vb2, ...).")
@click.option("--name", "names", multiple=True, help="Name the board(s) instead (repeatable).")
@click.option("--board", default="virtual", show_default=True, help="Board definition in boards/.")
@click.option("--baud", type=int, help="Limit the serial line to this baud rate (e.g. 115200).")
@click.option("--speed", default=1, show_default=True, type=int,
              help="Simulated clock speed-up (3600: an hour of sleep passes in a second).")
@click.option("--erase", is_flag=True, help="Start with an empty flash filesystem.")
@click.option("--forwarder", metavar="HOST:PORT",
              help="Send radio frames as Semtech packet-forwarder UDP to this network server.")
@click.option("--scenario", type=click.Path(dir_okay=False), help="Scenario file driving the simulated world.")
@click.option("--interpreter", type=click.Path(dir_okay=False), metavar="PATH",
              help="Run the board on this MicroPython binary (e.g. the 32-bit one, --board virtual_ttgo); "
                   "default: BYSANS_MICROPYTHON32 for 32-bit boards, else the unix port in .venv.")
@click.option("--json", "as_json", is_flag=True, help="Print the boards as JSON (id, port, ...).")
def start(count, names, board, baud, speed, erase, forwarder, scenario, interpreter, as_json):
    """Start virtual boards; returns once each one answers.

    \b
    Example:
      fleet sim start --count 3 --baud 115200 --json
      fleet sim start --board virtual_ttgo --interpreter ~/.cache/micropython32/.../micropython
    """
    boards = manager.start(count=count, names=list(names) or None, board=board, baud=baud, speed=speed,
                           erase=erase, forwarder=forwarder, scenario=scenario, interpreter=interpreter)
    statuses = [b.status() for b in boards]
    if as_json:
        echo_json(statuses)
    else:
        for st in statuses:
            click.echo(f"{st['id']}: {st['port']}")


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json):
    """List the running virtual boards.

    \b
    Example:
      fleet sim list --json
    """
    statuses = [b.status() for b in manager.running()]
    if as_json:
        echo_json(statuses)
    elif not statuses:
        click.echo("no virtual boards are running ('fleet sim start' starts one)")
    else:
        _table([_row(s) for s in statuses], ["id", "port", "board", "state", "last reset", "baud", "clock"])


@command.command("status")
@click.argument("board_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(board_id, as_json):
    """Show one board: state, resets, bytes on the wire.

    \b
    Example:
      fleet sim status vb1 --json
    """
    st = manager.get(board_id).status()
    if as_json:
        echo_json(st)
    else:
        c = st["counters"]
        boots = ", ".join(f"{n} {cause.replace('_', ' ')}" for cause, n in sorted(st["boots"].items())) or "none"
        click.echo(f"{st['id']} on {st['port']}: {st['state']}, last reset {st['reset_cause'].replace('_', ' ')}, "
                   f"boots: {boots}; {c['host_to_board']} bytes in, {c['board_to_host']} bytes out")


@command.command("reset")
@click.argument("board_id")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def reset(board_id, as_json):
    """Hard-reset a board (its reset button): RTC memory is lost, files stay.

    \b
    Example:
      fleet sim reset vb1
    """
    manager.get(board_id).reset()
    _done(as_json, board_id, "reset", f"{board_id}: reset")


@command.command("bootloader")
@click.argument("board_id")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def bootloader(board_id, as_json):
    """Put a board into download mode (hold BOOT, tap RESET): its chip's ROM loader waits for esptool.

    'fleet sim reset' leaves it. esptool uploads its flasher stub, which the virtual board runs as a chip
    does (--no-stub: the ROM alone):

    \b
    Example:
      fleet sim bootloader vb1
      python -m esptool --port /dev/pts/3 --before no-reset --after no-reset flash-id
      fleet sim reset vb1
    """
    manager.get(board_id).bootloader()
    _done(as_json, board_id, "download mode", f"{board_id}: download mode")


@command.command("powercut")
@click.argument("board_id")
@click.option("--off", "off_s", default=0.0, show_default=True, type=float,
              help="Seconds without power before it comes back.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def powercut(board_id, off_s, as_json):
    """Cut a board's power at once, wherever it is; power returns after --off seconds.

    \b
    Example:
      fleet sim powercut vb1 --off 2
    """
    manager.get(board_id).powercut(off_s)
    _done(as_json, board_id, "power cut", f"{board_id}: power cut" + (f", back in {off_s:g} s" if off_s else ", power back"),
          off_s=off_s)


@command.command("stop")
@click.argument("board_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Stop every running board.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def stop(board_ids, all_, as_json):
    """Stop virtual boards (their flash images are kept for the next start).

    \b
    Example:
      fleet sim stop vb1
      fleet sim stop --all
    """
    if all_:
        stopped = manager.stop_all()
    elif not board_ids:
        raise click.UsageError("name a board to stop, or give --all")
    else:
        boards = [manager.get(b) for b in board_ids]  # all found before any is stopped
        for b in boards:
            b.stop()
        stopped = [b.name for b in boards]
    if as_json:
        echo_json({"stopped": stopped})
    else:
        click.echo(f"stopped {len(stopped)} board{'s' if len(stopped) != 1 else ''}"
                   + (f": {', '.join(stopped)}" if stopped else ""))


@command.command("set")
@click.argument("board_id")
@click.argument("values", nargs=-1, required=True, metavar="NAME=VALUE...")
@click.option("--json", "as_json", is_flag=True, help="Print the world's values as JSON.")
def set_(board_id, values, as_json):
    """Set what a board's simulated sensors measure (temperature_c, distance_mm, co2_ppm, ...).

    \b
    Example:
      fleet sim set vb1 temperature_c=-4.5 distance_mm=310
    """
    parsed = {}
    for item in values:
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            parsed[name] = float(value)
        except ValueError:
            raise click.BadParameter(f"'{item}' is not NAME=NUMBER", param_hint="NAME=VALUE")
    world = manager.get(board_id).set_world(**parsed)
    if as_json:
        echo_json(world)
    else:
        click.echo(", ".join(f"{k}={world[k]:g}" for k in parsed))


@command.command("unplug")
@click.argument("board_id")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def unplug(board_id, as_json):
    """Pull a board's USB cable: its serial port vanishes and it loses power.

    \b
    Example:
      fleet sim unplug vb1 && fleet sim replug vb1
    """
    manager.get(board_id).unplug()
    _done(as_json, board_id, "unplugged", f"{board_id}: unplugged")


@command.command("replug")
@click.argument("board_id")
@click.option("--json", "as_json", is_flag=True, help="Print the new port as JSON.")
def replug(board_id, as_json):
    """Plug a board's USB cable back in: it powers up on a new serial port.

    \b
    Example:
      fleet sim replug vb1
    """
    port = manager.get(board_id).replug()
    if as_json:
        echo_json({"id": board_id, "port": port})
    else:
        click.echo(f"{board_id}: {port}")


@command.command("uplinks")
@click.argument("board_id")
@click.option("--decode", is_flag=True, help="Decode each payload with the payload codec.")
@click.option("--clear", is_flag=True, help="Forget them after printing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def uplinks(board_id, decode, clear, as_json):
    """Show the uplink payloads a board handed to its radio (kept until a real radio sends them).

    \b
    Example:
      fleet sim uplinks vb1 --decode --json
    """
    from datetime import datetime, timezone

    items = manager.get(board_id).captured(clear=clear)
    if decode:
        from ..codec import decode as decode_payload
        from ..codec.diag import decode_diag, diag_tables
        from ..errors import FleetError

        diag_port = diag_tables()["fport"]
        for u in items:
            try:
                data = bytes.fromhex(u["hex"])
                u["decoded"] = decode_diag(data) if u["fport"] == diag_port else decode_payload(data)
            except FleetError as e:
                u["error"] = e.message
    if as_json:
        echo_json(items)
        return
    if not items:
        click.echo(f"{board_id}: no uplinks yet")
    for u in items:
        when = datetime.fromtimestamp(u["sim_ms"] / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")
        extra = f"  {u['decoded']}" if "decoded" in u else (f"  ({u['error']})" if "error" in u else "")
        click.echo(f"{when}  fport {u['fport']}  {u['hex']}{extra}")


def _done(as_json: bool, board_id: str, outcome: str, text: str, **extra) -> None:
    """One line for people, or {"id", "outcome", ...} for scripts."""
    echo_json(dict(id=board_id, outcome=outcome, **extra)) if as_json else click.echo(text)
