"""`fleet enroll`: record new devices with their LoRaWAN identity (a pallet from CSV, or one device)."""

import sys

import click

from provisioning.enrollment import CSV_COLUMNS, enroll_board, enroll_csv
from provisioning.labels import write_label

from ..errors import CsvInvalid, Interrupted, UsageError
from ..registry import NewDevice
from .common import echo_json
from .devices import ROLE_HELP, print_table, registry_options
from .output import is_terminal

_CSV_HELP = "\n".join(f"  {c:10} {'required' if req else 'optional'}: {what}" for c, (req, what) in CSV_COLUMNS.items())


@click.command("enroll", epilog=ROLE_HELP + "\n\n\b\nCSV columns (a header line; ',' or ';' separated, UTF-8):\n" + _CSV_HELP)
@registry_options
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False), help="Enroll a pallet of boards from a CSV file.")
@click.option("--board", help="Board (from boards/) for rows without one, or for the one device.")
@click.option("--site", help="One device: where it is mounted.")
@click.option("--kind", type=click.Choice(["waste", "env"]), help="One device: its kind.")
@click.option("--lat", type=float, help="One device: latitude (WGS84).")
@click.option("--lon", type=float, help="One device: longitude (WGS84).")
@click.option("--mac", help="One device: the chip's MAC (DevEUI = its EUI-64); else a random DevEUI.")
@click.option("--sensors", default="", help="One device: sensor names, comma separated.")
@click.option("--no-board", is_flag=True, help="One device: record it without writing a board.")
@click.option("--port", "-p", help="One device: the board's serial port (or sim:NAME); its MAC gives the DevEUI and "
                                   "the credentials are written to it.")
@click.option("--join-eui", envvar="FLEET_JOIN_EUI", help="JoinEUI for new devices [FLEET_JOIN_EUI; default 0...0].")
@click.option("--labels", type=click.Path(file_okay=False), help="Write a QR label (PNG and SVG) per device here.")
@click.option("--json", "as_json", is_flag=True, help="Print the enrolled devices as JSON (no keys).")
def command(ctx_reg, csv_file, board, site, kind, lat, lon, mac, sensors, no_board, port, join_eui, labels, as_json):
    """Create DevEUI, JoinEUI and AppKey for new devices and record them in the registry.

    With --csv the WHOLE file is checked first (kommune, kind, position, DevEUIs unique and not yet
    enrolled, your access): one problem anywhere and nobody is enrolled. The AppKeys are sealed in the
    registry and never printed; 'fleet export' hands them to a network server.

    \b
    Example:
      fleet enroll --kommune 751 --csv pallet-17.csv --board virtual --labels labels/
      fleet enroll --kommune 751 --site "Park Allé 1" --kind waste --board virtual --no-board
      fleet enroll --kommune 751 --site "Park Allé 1" --kind waste --port /dev/ttyUSB0 --labels labels/
    """
    reg, op, kfilter = ctx_reg()
    with reg:
        if csv_file:
            try:
                enrolled = enroll_csv(reg, op, csv_file, default_board=board, join_eui=join_eui)
            except CsvInvalid as e:
                click.echo(f"{csv_file}: {len(e.problems)} problem{'s' if len(e.problems) != 1 else ''}:", err=True)
                for p in e.problems[:50]:
                    click.echo(f"  {p}", err=True)
                if len(e.problems) > 50:
                    click.echo(f"  ... {len(e.problems) - 50} more", err=True)
                raise
        elif port:
            if csv_file or no_board or mac:
                raise UsageError("--port writes one board: leave out --csv, --no-board and --mac (the board's own "
                                 "MAC is read)")
            if not (site and kind):
                raise UsageError("one board needs --site and --kind", hint='e.g. --site "Park Allé 1" --kind waste')
            from provisioning.enroll_on_board import enroll_on_board

            from .ports import port_ref

            new = NewDevice(kommune=kfilter or op.kommune or "", site=site, kind=kind, board=board or "",
                            latitude=lat, longitude=lon,
                            sensors=tuple(s.strip() for s in sensors.split(",") if s.strip()))
            try:
                record, identity, _ = enroll_on_board(reg, op, new, port_ref(port), join_eui=join_eui)
            except KeyboardInterrupt as e:
                message, hint = interrupted_state(getattr(e, "enroll_state", None), port)
                raise Interrupted(message, hint=hint) from None
            enrolled = [(record, identity)]
        elif no_board:
            if not (site and kind and board):
                raise UsageError("one device needs --site, --kind and --board",
                                 hint='e.g. --site "Park Allé 1" --kind waste --board virtual')
            new = NewDevice(kommune=kfilter or op.kommune or "", site=site, kind=kind, board=board, latitude=lat,
                            longitude=lon, sensors=tuple(s.strip() for s in sensors.split(",") if s.strip()))
            enrolled = [enroll_board(reg, op, new, mac=mac, join_eui=join_eui)]
        else:
            raise UsageError("nothing to enroll", hint="give --csv FILE for a pallet, --port P with --site and --kind "
                                                       "for the board on P, or --no-board with --site, --kind and "
                                                       "--board to record one device")
    records = [r for r, _ in enrolled]
    written = _write_labels(records, labels) if labels else []
    if as_json:
        echo_json([r.to_dict() for r in records])
    elif len(records) > TABLE_MAX and is_terminal():
        kommuner = sorted({r.kommune_kode for r in records})
        click.echo(f"{len(records)} devices enrolled in kommune {', '.join(kommuner)} (too many to list here): "
                   f"'fleet devices list --kommune {kommuner[0]}' lists them, '| less' pages them"
                   + (f"; labels in {labels} ({2 * len(written)} files)" if labels else ""))
    else:
        print_table([[r.dev_eui, f"{r.kommune_kode} {r.kommune_navn}", r.site, r.kind, r.board] for r in records],
                    ("dev_eui", "kommune", "site", "kind", "board"))
        click.echo(f"{len(records)} device{'s' if len(records) != 1 else ''} enrolled"
                   + (f"; labels in {labels} ({2 * len(written)} files)" if labels else ""), err=True)


TABLE_MAX = 200  # more enrolled devices than this are summed up on a terminal, not drawn as a table


def _write_labels(records, out) -> list:
    """Writes each record's labels, with a progress bar on a terminal (a pallet of 10,000 takes a while)."""
    if not sys.stderr.isatty() or len(records) < 20:
        return [write_label(r, out) for r in records]
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    written = []
    with Progress(TextColumn("labels"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("labels", total=len(records))
        for r in records:
            written.append(write_label(r, out))
            bar.advance(task)
    return written


def interrupted_state(state: dict | None, port: str) -> tuple[str, str]:
    """(message, hint) for `fleet enroll --port` stopped by Ctrl-C: what the registry and the board hold."""
    again = "run the same command again"
    stage = (state or {}).get("stage", "reading")
    dev = (state or {}).get("dev_eui")
    if stage == "reading":
        return (f"interrupted while reading the board on {port}: nothing was enrolled and nothing was written",
                f"{again} to enroll it")
    if stage == "writing":
        return (f"interrupted while writing DevEUI {dev}'s credentials to the board on {port}: it was not "
                f"enrolled (its reservation is removed, in the audit log); each file on the board is whole, old "
                f"or new", f"{again}: the board is written afresh and enrolled")
    return (f"interrupted after DevEUI {dev} was enrolled and its board written and read back",
            f"nothing to repeat: 'fleet devices show {dev}' shows it")
