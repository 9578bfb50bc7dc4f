"""`fleet settings`: node settings over LoRaWAN downlink (fleet.settings; docs/formats/settings.md)."""

import click

from ..errors import UsageError
from .common import echo_json
from .devices import ROLE_HELP, registry_options
from .output import print_table


@click.group("settings", epilog=ROLE_HELP)
def command():
    """Change nodes' sampling and send interval, fill and fire thresholds by downlink.

    \b
    Example:
      fleet settings set --device 70B3D57ED0000001 interval_s=600 batch_max_age_s=3600
      fleet settings set --kommune 751 --site "Ceres Allé" fill_alarm_bp=8500
      fleet settings show --device 70B3D57ED0000001
    """


def _keys_help() -> str:
    from ..settings import keys

    return "; ".join(f"{k.name} {k.lo}..{k.hi}" + (f" (steps of {k.step})" if k.step > 1 else "")
                     for k in keys().values())


@command.command("set")
@registry_options
@click.option("--device", "devices", multiple=True, metavar="DEVEUI", help="A device to set (repeatable).")
@click.option("--site", metavar="TEXT", help="With --kommune: only devices whose site starts with TEXT "
                                             "(case-insensitive).")
@click.option("--note", help="Why (kept in the audit log).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: per device its seq, frame and ChirpStack body.")
@click.argument("assignments", nargs=-1, metavar="KEY=VALUE...")
def set_(ctx_reg, devices, site, note, as_json, assignments):
    """Queue a settings command for each device: KEY=VALUE from the settable keys (bounds below; a value
    outside them is refused and nothing is queued). Each device's command gets its next sequence number
    and an audit entry with your name; the node applies it at its next wake after the downlink and
    acknowledges it in its next uplink (see `fleet settings show`).

    The command's frame goes to the network server as the body of ChirpStack v4's device queue API
    (POST /api/devices/{devEui}/queue), printed per device.

    \b
    Example:
      fleet settings set --device 70B3D57ED0000001 interval_s=600 batch_max_age_s=3600
      fleet settings set --kommune 751 --site "Ceres Allé" fire_threshold_cdeg=6000 --json
    """
    from ..settings import SettingsStore, parse_assignments
    from ..settings.routes import chirpstack_queue

    values = parse_assignments(assignments)  # before the registry opens: a bad value changes nothing
    reg, op, kfilter = ctx_reg()
    with reg:
        if devices:
            if site:
                raise UsageError("--site narrows a kommune's devices: give --kommune, not --device",
                                 hint='e.g. fleet settings set --kommune 751 --site "Park Allé" interval_s=600')
            targets = [reg.get_device(op, e) for e in dict.fromkeys(devices)]
        elif kfilter:
            targets = [d for d in reg.list_devices(op, kommune=kfilter) if d.state != "retired"
                       and (not site or d.site.casefold().startswith(site.casefold()))]
            if not targets:
                raise UsageError(f"no devices in kommune {kfilter}" + (f" at a site starting '{site}'" if site else ""),
                                 hint="'fleet devices list' shows what you may see")
        else:
            raise UsageError("which devices? give --device DEVEUI or --kommune K (with --site to narrow it)",
                             hint="e.g. fleet settings set --device 70B3D57ED0000001 interval_s=600")
        cmds = SettingsStore(reg).queue(op, targets, values, note=note)
    for c in cmds:
        c["chirpstack"] = chirpstack_queue(c)
    if as_json:
        echo_json(cmds)
        return
    for c in cmds:
        kv = " ".join(f"{k}={v}" for k, v in c["settings"].items())
        click.echo(f"{c['dev_eui']}: seq {c['seq']} queued ({kv}); FPort {c['fport']} frame {c['payload_hex']}")
    click.echo("ChirpStack v4: POST each --json 'chirpstack' body to its path; the node applies it at the wake "
               "after the downlink and answers in its next uplink (fleet settings show).")


set_.epilog = "Settable (bounds from the format, firmware/bysans/settings_spec.py): " + _keys_help()


@command.command("show")
@registry_options
@click.option("--device", "dev_eui", required=True, metavar="DEVEUI", help="The device.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(ctx_reg, dev_eui, as_json):
    """Show a device's desired settings (every command not refused) against those its node acknowledged,
    and its commands with their state (queued, applied, refused and why).

    \b
    Example:
      fleet settings show --device 70B3D57ED0000001
    """
    from ..settings import SettingsStore

    reg, op, _ = ctx_reg()
    with reg:
        info = SettingsStore(reg).show(op, dev_eui)
    if as_json:
        echo_json(info)
        return
    keys = sorted(set(info["desired"]) | set(info["acknowledged"]))
    if not keys:
        click.echo(f"{info['dev_eui']}: no settings sent by downlink (the node runs its node.json)")
        return
    print_table([[k, str(info["desired"].get(k, "-")), str(info["acknowledged"].get(k, "-")),
                  "waiting" if k in info["waiting"] else "ok"] for k in keys],
                ("setting", "desired", "acknowledged", "state"), title=info["dev_eui"])
    print_table([[str(c["seq"]), " ".join(f"{k}={v}" for k, v in c["settings"].items()), c["state"],
                  c["result"] or "-", c["operator"], c["created_at"][:16]] for c in info["commands"]],
                ("seq", "settings", "state", "result", "operator", "queued"))
