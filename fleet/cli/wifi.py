"""`fleet wifi`: a board's WiFi credentials over USB (the networks its OTA check-ins join)."""

import click

from ..errors import UsageError
from .common import echo_json


@click.group("wifi")
def command():
    """WiFi networks a board joins for its OTA check-ins (docs/ota.md "WiFi").

    \b
    Example:
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
