"""`fleet lorawan`: LoRaWAN frames on the host (decode what a gateway or network server logged)."""

import click

from ..lorawan.crypto import Key
from ..lorawan.report import describe, parse_hex
from .common import echo_json


def _key(name):
    def convert(ctx, param, value):
        if value is None or value == "":
            return None
        return Key(value, f"--{param.name.replace('_', '-')}")  # LoRaWANKeyError never shows the value

    return convert


@click.group("lorawan")
def command():
    """LoRaWAN 1.0.x frames: decode, check the MIC, decrypt.

    \b
    Example:
      fleet lorawan decode 40F17DBE4900020001954378762B11FF0D \\
          --nwkskey 44024241ed4ce9a68c6a8bc055233fd3 --appskey ec925802ae430ca77fd3dd73cb2cc588 --json
    """


@command.command("decode")
@click.argument("frame_hex", metavar="HEX")
@click.option("--nwkskey", envvar="FLEET_NWKSKEY", callback=_key("NwkSKey"), show_envvar=True,
              help="Network session key (32 hex digits): checks the MIC and decrypts FPort 0.")
@click.option("--appskey", envvar="FLEET_APPSKEY", callback=_key("AppSKey"), show_envvar=True,
              help="Application session key (32 hex digits): decrypts the application payload.")
@click.option("--appkey", envvar="FLEET_APPKEY", callback=_key("AppKey"), show_envvar=True,
              help="AppKey: checks a join-request's MIC, decrypts a join-accept.")
@click.option("--fcnt-msb", default=0, show_default=True, type=click.IntRange(0, 0xFFFF),
              help="Upper 16 bits of the 32-bit frame counter (the frame carries only the lower 16).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (mtype, dev_addr, fcnt, fport, "
                                                        "payload_hex, mic_ok, ...).")
def decode(frame_hex, nwkskey, appskey, appkey, fcnt_msb, as_json):
    """Decode a PHYPayload given in HEX (MHDR to MIC).

    Keys can come from the environment instead, to keep them out of the shell history; they are never
    printed. mic_ok is null when the key that checks it was not given.

    \b
    Example:
      fleet lorawan decode 40F17DBE4900020001954378762B11FF0D \\
          --nwkskey 44024241ed4ce9a68c6a8bc055233fd3 --appskey ec925802ae430ca77fd3dd73cb2cc588
      FLEET_APPKEY=98929b92c49edba9676d646d3b612456 \\
          fleet lorawan decode 0039363463336913AA05693574323831330489C65B1304 --json
    """
    info = describe(parse_hex(frame_hex), nwk_skey=nwkskey, app_skey=appskey, app_key=appkey,
                    fcnt_msb=fcnt_msb)
    if as_json:
        echo_json(info)
        return
    for k, v in info.items():
        if k == "mac_commands":
            for cmd in v:
                rest = ", ".join(f"{a}={b}" for a, b in cmd.items() if a not in ("cid", "name"))
                click.echo(f"  mac: {cmd['name'] or 'unknown CID 0x%02x' % cmd['cid']} {rest}".rstrip())
            continue
        if v is None:
            v = "-"
        elif isinstance(v, bool):
            v = "yes" if v else "no"
        click.echo(f"{k:>22}: {v}")
    if info.get("mic_ok") is False:
        click.echo("warning: the MIC does not match: wrong key, wrong --fcnt-msb or a damaged frame", err=True)
