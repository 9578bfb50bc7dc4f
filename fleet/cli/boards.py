"""`fleet boards`: the board definitions in boards/."""

import click

from .. import boards
from ..errors import BoardInvalid
from .common import echo_json


@click.group("boards")
def command():
    """List, show and check board definitions (one JSON file per board in boards/).

    \b
    Example:
      fleet boards list
      fleet boards show heltec_v3 --json
      fleet boards check ./my_board.json
    """


def _summary(b):
    radio = b.get("radio", {}).get("chip", "-")
    sensors = ", ".join(s["type"] for s in b.get("sensors", [])) or "-"
    return [b["name"], b["chip"], b["mpy_arch"], f"{b['flash']['offset']:#x}", radio, sensors]


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every board file, checked).")
def list_(as_json):
    """List the boards, each checked against the schema.

    \b
    Example:
      fleet boards list --json
    """
    defs = [boards.load(n) for n in boards.names()]
    if as_json:
        echo_json(defs)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("name", "chip", "arch", "image at", "radio", "sensors")
    for b in defs:
        t.add_row(*_summary(b))
    Console().print(t)


@command.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the board file as JSON.")
def show(name, as_json):
    """Show one board: chip, flash, buses, radio pins, sensors, battery.

    \b
    Example:
      fleet boards show ttgo_lora32_v21
    """
    b = boards.load(name)
    if as_json:
        echo_json(b)
        return
    click.echo(f"{b['name']}: {b['title']}")
    click.echo(f"  chip {b['chip']}, code {b['mpy_arch']}, HAL {b['hal']}, "
               f"flash {b['flash']['size'] // 1048576} MiB, base image at {b['flash']['offset']:#x}")
    for bus in b.get("i2c", []):
        click.echo(f"  i2c{bus['id']}: SDA {bus['sda']}, SCL {bus['scl']}, {bus['freq'] // 1000} kHz")
    for bus in b.get("spi", []):
        click.echo(f"  spi{bus['id']}: SCK {bus['sck']}, MOSI {bus['mosi']}, MISO {bus['miso']}")
    for u in b.get("uart", []):
        click.echo(f"  uart{u['id']}: TX {u['tx']}, RX {u['rx']}, {u.get('baud', 9600)} baud")
    if "radio" in b:
        r = dict(b["radio"])
        chip = r.pop("chip")
        click.echo(f"  radio {chip}: " + ", ".join(f"{k} {v}" for k, v in r.items()))
    for s in b.get("sensors", []):
        where = f"{s['bus']} @ {s['address']:#04x}" if "address" in s else s["bus"]
        click.echo(f"  sensor {s['type']} on {where}")
    bat = b.get("battery")
    if bat and "adc_pin" in bat:
        top, bottom = bat["divider_ohm"]
        click.echo(f"  battery: ADC GPIO {bat['adc_pin']}, divider {top}/{bottom} ohm "
                   f"(x{(top + bottom) / bottom:g})"
                   + (f", enabled by GPIO {bat['enable_pin']} at level {bat.get('enable_level', 1)}"
                      if "enable_pin" in bat else ""))
    elif bat:
        click.echo(f"  battery: {bat.get('note', bat.get('pmu', ''))}")


@command.command("check")
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {file: \"ok\"} (problems go to the error).")
def check(paths, as_json):
    """Check board files against the schema (all of boards/ when no file is named).

    \b
    Example:
      fleet boards check boards/tbeam.json
    """
    checked = {}
    if paths:
        for p in paths:
            try:
                boards.load_file(p)
            except BoardInvalid as e:
                if not as_json:
                    for problem in e.problems:
                        click.echo(f"{p}: {problem}", err=True)
                raise
            checked[p] = "ok"
    else:
        for n in boards.names():
            boards.load(n)
            checked[n] = "ok"
    if as_json:
        echo_json(checked)
    else:
        for name in checked:
            click.echo(f"{name}: ok")
