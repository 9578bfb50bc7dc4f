"""`fleet devices`: the registry's devices, as the acting operator may see them.

The registry options are shared with `fleet enroll` and `fleet export` (registry_options below).
"""

import csv
import getpass
import itertools
import os
import sys
from functools import wraps

import click

from ..errors import UsageError
from ..registry import CROSS_KOMMUNE, Operator, Registry, all_kommuner, lookup
from .common import echo_json
from .output import print_table  # noqa: F401  (enroll, export and station print through it too)

ROLE_HELP = ("Who is acting. The operator (--operator / FLEET_OPERATOR, default: your login name) acts for "
             "one kommune (--kommune / FLEET_KOMMUNE) and sees and changes only its devices, unless given "
             f"the {CROSS_KOMMUNE} role (--role / FLEET_ROLE), for which --kommune only narrows the view. "
             "The registry is --db / FLEET_DB (an SQLite file in your data directory by default; "
             "postgresql+psycopg://user@host/db for a shared one); its AppKeys are sealed with the key in "
             "FLEET_SECRET_KEY or the key file FLEET_KEY_FILE.")


# Who is acting, for the audit log: shared by every command that changes something (`fleet rollout` too).
operator_option = click.option("--operator", metavar="NAME", envvar="FLEET_OPERATOR",
                               help="Your name, for the audit log [FLEET_OPERATOR; default: login name].")


def registry_options(f):
    """--db, --operator, --kommune, --role: the registry and who acts on it. Passes `ctx_reg` to f: a
    callable returning (registry, operator, kommune filter)."""

    @click.option("--db", metavar="URL", envvar="FLEET_DB", help="Registry database URL or SQLite path [FLEET_DB].")
    @operator_option
    @click.option("--kommune", "-k", metavar="K", envvar="FLEET_KOMMUNE",
                  help="Kommunekode you act for, e.g. 751 (Aarhus) [FLEET_KOMMUNE].")
    @click.option("--role", type=click.Choice(["kommune", CROSS_KOMMUNE]), envvar="FLEET_ROLE", default="kommune",
                  show_default=True, help=f"Your role; {CROSS_KOMMUNE} sees every kommune [FLEET_ROLE].")
    @wraps(f)
    def wrapper(*args, db, operator, kommune, role, **kw):
        def open_():
            name = operator_name(operator)
            op = Operator(name, kommune=None if role == CROSS_KOMMUNE else kommune, role=role)
            kfilter = lookup(kommune).kode if kommune else None
            return Registry.open(db), op, kfilter
        return f(*args, ctx_reg=open_, **kw)

    return wrapper


def operator_name(given: str | None) -> str:
    """The --operator / FLEET_OPERATOR given, else the login name."""
    return given or _login()


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in a container
        return os.environ.get("USER") or "unknown"


@click.group("devices", epilog=ROLE_HELP)
def command():
    """List, show and export the registry's devices (one kommune's, or all with the cross-kommune role).

    \b
    Example:
      export FLEET_KOMMUNE=751 FLEET_OPERATOR=anna
      fleet devices list
      fleet devices show 240AC4FFFE123456
      fleet devices export --json > aarhus.json
    """


_COLUMNS = ("dev_eui", "kommune", "site", "kind", "board", "state", "firmware", "last seen")


def _row(d) -> list[str]:
    """A listing row (Registry.iter_device_rows) or a DeviceRecord, as the table's cells."""
    return [d.dev_eui, f"{d.kommune_kode} {d.kommune_navn}", d.site, d.kind, d.board, d.state,
            d.firmware_version or "-", f"{d.last_seen:%Y-%m-%d %H:%M}" if d.last_seen else "-"]


@command.command("list")
@registry_options
@click.option("--state", help="Only devices in this state (enrolled, active, silent, retired).")
@click.option("--kind", type=click.Choice(["waste", "env"]), help="Only this kind of device.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(ctx_reg, state, kind, as_json):
    """List the devices you may see.

    \b
    Example:
      fleet devices list --kommune 751 --kind waste
      fleet devices list --role cross-kommune --json
    """
    reg, op, kfilter = ctx_reg()
    with reg:
        if as_json:
            echo_json([d.to_dict() for d in reg.list_devices(op, kommune=kfilter, state=state, kind=kind)])
            return
        # streamed: only the shown columns are read, and piped rows go out as they come
        rows = reg.iter_device_rows(op, kommune=kfilter, state=state, kind=kind)
        first = next(rows, None)
        if first is None:
            click.echo("no devices (fleet enroll --csv FILE enrolls a pallet of boards)")
            return
        print_table(map(_row, itertools.chain((first,), rows)), _COLUMNS)


@command.command("show")
@registry_options
@click.argument("dev_eui")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--history", default=10, show_default=True, help="How many audit log entries to show.")
def show(ctx_reg, dev_eui, as_json, history):
    """Show one device and its latest changes (the AppKey is never shown).

    \b
    Example:
      fleet devices show 240AC4FFFE123456 --history 20
    """
    reg, op, _ = ctx_reg()
    with reg:
        d = reg.get_device(op, dev_eui)
        log = reg.audit_log(op, dev_eui=d.dev_eui, limit=history)
    if as_json:
        echo_json(dict(d.to_dict(), history=[dict(at=a.at.isoformat(), operator=a.operator, action=a.action,
                                                  changes=a.changes, note=a.note) for a in log]))
        return
    for k, v in d.to_dict().items():
        click.echo(f"{k:17} {', '.join(v) if isinstance(v, list) else ('-' if v is None else v)}")
    for a in log:
        changed = ", ".join(f"{k}: {o} -> {n}" for k, (o, n) in a.changes.items()) if a.action != "device.enroll" \
            else "enrolled"
        click.echo(f"  {a.at:%Y-%m-%d %H:%M:%S} {a.operator:12} {a.action:18} {changed}"
                   + (f" ({a.note})" if a.note else ""))


@command.command("export")
@registry_options
@click.option("--json", "as_json", is_flag=True, help="JSON instead of CSV.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Write to this file, not stdout.")
def export(ctx_reg, as_json, out):
    """Export the devices you may see as CSV (a spreadsheet) or JSON, without keys.

    For a network server's import use 'fleet export os2iot' or 'fleet export chirpstack'.

    \b
    Example:
      fleet devices export --kommune 751 --out aarhus-devices.csv
    """
    reg, op, kfilter = ctx_reg()
    with reg:
        devices = [d.to_dict() for d in reg.list_devices(op, kommune=kfilter)]
    f = open(out, "w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        if as_json:
            import json

            f.write(json.dumps(devices, indent=2, ensure_ascii=False) + "\n")
        else:
            fields = ["dev_eui", "join_eui", "name", "kommune_kode", "kommune_navn", "site", "latitude", "longitude",
                      "board", "kind", "sensors", "firmware_version", "state", "last_seen", "created_at",
                      "updated_at", "id"]
            w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
            w.writeheader()
            for d in devices:
                w.writerow(dict(d, sensors=" ".join(d["sensors"])))
    finally:
        if out:
            f.close()
    if out:
        click.echo(f"{len(devices)} devices written to {out}", err=True)


@command.command("kommuner")
@click.option("--region", help="Only this region (e.g. Midtjylland).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def kommuner(region, as_json):
    """List the 98 kommuner and their kommunekoder.

    \b
    Example:
      fleet devices kommuner --region Midtjylland
    """
    ks = [k for k in all_kommuner().values() if region is None or k.region.casefold() == region.casefold()]
    if region and not ks:
        regions = sorted({k.region for k in all_kommuner().values()})
        raise UsageError(f"no region '{region}'", hint=f"regions: {', '.join(regions)}")
    if as_json:
        echo_json([dict(kode=k.kode, navn=k.navn, region=k.region, lat=k.lat, lon=k.lon) for k in ks])
    else:
        print_table([[k.kode, k.navn, k.region] for k in ks], ("kode", "navn", "region"))
