"""`fleet wifi`: a board's WiFi credentials over USB (the networks its OTA check-ins join)."""

import contextlib

import click

from ..errors import UsageError
from .common import echo_json
from .devices import registry_options


@click.group("wifi")
def command():
    """WiFi networks a board joins for its OTA check-ins (docs/wifi.md): kept in the registry per kommune or
    site (networks), written to a board at enrollment or by push, or given by hand (set).

    \b
    Example:
      fleet wifi networks add --kommune 751 --ssid skole-iot --site Skovvangskolen
      fleet wifi push --kommune 751 --port /dev/ttyUSB0
      fleet wifi set --port /dev/ttyUSB0 --ssid skole-iot
    """


@command.command("set")
@click.option("--port", required=True, help="Serial port of the board (fleet sim list shows virtual ones).")
@click.option("--ssid", "ssids", multiple=True, required=True,
              help="Network name; repeat for more networks, tried in order (at most 4).")
@click.option("--password-env", default="FLEET_WIFI_PASSWORD", show_default=True, metavar="VAR",
              help="Environment variable holding the password (one per --ssid, separated by newlines); "
                   "without it, you are asked for each, unseen. An empty password is an open network.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def set_(port, ssids, password_env, as_json):
    """Write (replace) the board's WiFi networks: /config/wifi.json. The password is never shown.

    WPA2-Personal or open networks; MicroPython's ESP32 port cannot join WPA2-Enterprise.

    \b
    Example:
      fleet wifi set --port /dev/ttyUSB0 --ssid skole-iot
    """
    import os

    from provisioning.session import Session
    from provisioning.wifi import wifi_file, write_networks

    env = os.environ.get(password_env)
    if env is not None:
        passwords = env.split("\n")
        if len(passwords) != len(ssids):
            raise UsageError(f"{password_env} holds {len(passwords)} password(s) for {len(ssids)} network(s)",
                             hint="one password per --ssid, separated by newlines")
    else:
        passwords = [click.prompt(f"password for {s}", hide_input=True, default="", show_default=False)
                     for s in ssids]
    networks = [{"ssid": s, "password": p} for s, p in zip(ssids, passwords)]
    wifi_file(networks)  # refused before the port is opened
    from ..errors import PortNotFound
    from .ports import port_path, with_ports_hint

    try:
        with Session(port_path(port)) as s:
            names = write_networks(s, networks)
    except PortNotFound as e:
        raise with_ports_hint(e) from None
    if as_json:
        echo_json({"port": port, "networks": names})
    else:
        click.echo(f"{port}: WiFi {', '.join(names)}")


@contextlib.contextmanager
def _port_session(port):
    """An open Session on port; a missing port's hint names the ports that exist (the port is opened on
    entering the Session, so the error is caught there, not where the Session is made)."""
    from provisioning.session import Session

    from ..errors import PortNotFound
    from .ports import port_path, with_ports_hint

    try:
        with Session(port_path(port)) as s:
            yield s
    except PortNotFound as e:
        raise with_ports_hint(e) from None


@command.command("push")
@registry_options
@click.option("--port", required=True, help="Serial port of an enrolled board (fleet sim list shows virtual ones).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def push(ctx_reg, port, as_json):
    """Write the registry's WiFi networks for the board's site and kommune to the board (after a network
    was added or changed). The board's site and kommune come from its /config/device.json; passwords are
    never shown.

    \b
    Example:
      fleet wifi push --kommune 751 --port /dev/ttyUSB0
    """
    from provisioning.wifi import write_from_registry

    reg, op, _ = ctx_reg()
    with reg, _port_session(port) as s:
        place, names = write_from_registry(s, reg, op)
    if as_json:
        echo_json({"port": port, "kommune": place["kommune"], "site": place["site"], "networks": names})
    else:
        click.echo(f"{port} ({place['name']}): WiFi {', '.join(names)}")


@command.group("networks")
def networks():
    """The WiFi networks the registry keeps per kommune or per site (passwords sealed, never shown). A board
    is given its site's networks first, then its kommune's (at most 4), at enrollment and by 'fleet wifi push'.

    \b
    Example:
      FLEET_WIFI_PASSWORD=... fleet wifi networks add --kommune 751 --ssid skole-iot --site Skovvangskolen
      fleet wifi networks list --kommune 751
    """


@networks.command("add")
@registry_options
@click.option("--ssid", required=True, help="Network name (1 to 32 bytes).")
@click.option("--site", default="", help="Only for devices at this site (as enrolled); default: the whole kommune.")
@click.option("--password-env", default="FLEET_WIFI_PASSWORD", show_default=True, metavar="VAR",
              help="Environment variable holding the password; without it, you are asked, unseen. An empty "
                   "password is an open network.")
@click.option("--replace", is_flag=True, help="Give a stored network a new password.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored network as JSON (never its password).")
def networks_add(ctx_reg, ssid, site, password_env, replace, as_json):
    """Store a WiFi network (WPA2-Personal or open) for a kommune or one site of it, sealed.

    \b
    Example:
      FLEET_WIFI_PASSWORD=... fleet wifi networks add --kommune 751 --ssid skole-iot --site Skovvangskolen
    """
    import os

    from ..registry.wifi import check_network

    reg, op, kfilter = ctx_reg()
    with reg:
        kommune = _kommune(op, kfilter)
        password = os.environ.get(password_env)
        if password is None:
            check_network(ssid, None)  # a bad SSID is refused before the prompt
            password = click.prompt(f"password for {ssid}", hide_input=True, default="", show_default=False)
        rec = reg.add_wifi_network(op, kommune=kommune, ssid=ssid, password=password, site=site, replace=replace)
    if as_json:
        echo_json(rec.to_dict())
    else:
        where = f"site '{rec.site}' of kommune {rec.kommune_kode}" if rec.site else f"kommune {rec.kommune_kode}"
        click.echo(f"WiFi {rec.ssid} ({'open' if rec.open else 'WPA2-Personal'}) stored for {where}")


@networks.command("list")
@registry_options
@click.option("--json", "as_json", is_flag=True, help="Print the networks as JSON (never a password).")
def networks_list(ctx_reg, as_json):
    """The stored WiFi networks you may see (your kommune's; every kommune's for the cross-kommune role).

    \b
    Example:
      fleet wifi networks list --kommune 751
    """
    from .devices import print_table

    reg, op, kfilter = ctx_reg()
    with reg:
        recs = reg.list_wifi_networks(op, kommune=kfilter)
    if as_json:
        echo_json([r.to_dict() for r in recs])
        return
    print_table([[r.kommune_kode, r.site or "(every site)", r.ssid, "open" if r.open else "wpa2-personal",
                  r.updated_at.strftime("%Y-%m-%d %H:%M")] for r in recs],
                ("kommune", "site", "ssid", "security", "changed"))
    click.echo(f"{len(recs)} network{'s' if len(recs) != 1 else ''}", err=True)


@networks.command("remove")
@registry_options
@click.option("--ssid", required=True, help="Network name.")
@click.option("--site", default="", help="The site it was stored for; default: the whole kommune's.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def networks_remove(ctx_reg, ssid, site, as_json):
    """Delete a stored network (boards keep it until 'fleet wifi push' writes them again).

    \b
    Example:
      fleet wifi networks remove --kommune 751 --ssid skole-iot --site Skovvangskolen
    """
    reg, op, kfilter = ctx_reg()
    with reg:
        kommune = _kommune(op, kfilter)
        reg.remove_wifi_network(op, kommune=kommune, ssid=ssid, site=site)
    if as_json:
        echo_json({"removed": {"kommune": kommune, "site": site or None, "ssid": ssid}})
    else:
        click.echo(f"WiFi {ssid} removed")


def _kommune(op, kfilter) -> str:
    kommune = kfilter or op.kommune
    if not kommune:
        raise UsageError("which kommune's network?", hint="give --kommune K, e.g. --kommune 751")
    return kommune
