"""`fleet export`: the registry's devices to network servers (OS2iot bulk CSV, ChirpStack v4 REST API)."""

import os

import click

from ..errors import UsageError
from ..exports import chirpstack, os2iot
from .common import echo_json
from .devices import ROLE_HELP, print_table, registry_options


@click.group("export", epilog=ROLE_HELP)
def command():
    """Hand devices and their keys to a network server: OS2iot's bulk import or ChirpStack's API.

    Both read AppKeys; every key read is recorded in the audit log with who and why.

    \b
    Example:
      fleet export os2iot --kommune 751 --device-profile-id 5f0e... --out os2iot/
      CS_KEY=... fleet export chirpstack --url http://chirpstack:8090 --api-key-env CS_KEY \\
          --application-id 9a1c... --device-profile-id 5f0e...
    """


@command.command("os2iot")
@registry_options
@click.option("--device-profile-id", required=True, metavar="UUID",
              help="The device profile's id in OS2iot (LoRaWAN > device profiles).")
@click.option("--device-model-id", default="", metavar="ID", help="OS2iot device model id (optional).")
@click.option("--out", required=True, type=click.Path(),
              help="A directory (files os2iot-001.csv, ... of 50 devices each) or one .csv file (<= 50 devices).")
def os2iot_(ctx_reg, device_profile_id, device_model_id, out):
    """Write OS2iot's bulk-import CSV (OTAA devices with AppKeys; files of 50, mode 0600).

    \b
    Example:
      fleet export os2iot --kommune 751 --device-profile-id 5f0e3c2a-... --out os2iot/
    """
    reg, op, kfilter = ctx_reg()
    with reg:
        files, n = os2iot.export(reg, op, out, device_profile_id=device_profile_id, kommune=kfilter,
                                 device_model_id=device_model_id)
    for f in files:
        click.echo(str(f))
    click.echo(f"{n} devices in {len(files)} file{'s' if len(files) != 1 else ''}; the files hold AppKeys: "
               "import them into OS2iot, then delete them", err=True)


@command.command("chirpstack")
@registry_options
@click.option("--url", required=True, help="ChirpStack's REST API, e.g. http://chirpstack:8090.")
@click.option("--api-key-env", default="CHIRPSTACK_API_KEY", show_default=True, metavar="VAR",
              help="Environment variable that holds the API token (never give a token on the command line).")
@click.option("--application-id", required=True, metavar="UUID", help="ChirpStack application id.")
@click.option("--device-profile-id", required=True, metavar="UUID", help="ChirpStack device profile id.")
@click.option("--dev-eui", "dev_euis", multiple=True, metavar="DEVEUI", help="Only these devices (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def chirpstack_(ctx_reg, url, api_key_env, application_id, device_profile_id, dev_euis, as_json):
    """Create devices and their OTAA keys in ChirpStack v4 through its REST API.

    Devices that exist in ChirpStack already are reported as 'exists' and left unchanged.

    \b
    Example:
      export CHIRPSTACK_API_KEY=eyJ0eXAiOiJKV1Qi...
      fleet export chirpstack --url http://chirpstack:8090 --kommune 751 \\
          --application-id 9a1c... --device-profile-id 5f0e...
    """
    api_key = os.environ.get(api_key_env, "")
    if not api_key:
        raise UsageError(f"the environment variable {api_key_env} holds no ChirpStack API token",
                         hint=f"export {api_key_env}=<token from ChirpStack's API keys page>")
    reg, op, kfilter = ctx_reg()
    with reg:
        results = chirpstack.export(reg, op, url=url, api_key=api_key, application_id=application_id,
                                    device_profile_id=device_profile_id, kommune=kfilter, dev_euis=dev_euis)
    if as_json:
        echo_json([r.__dict__ for r in results])
    else:
        print_table([[r.dev_eui, r.outcome, r.detail] for r in results], ("dev_eui", "result", "detail"))
    failed = [r for r in results if r.outcome == "failed"]
    if failed:
        raise UsageError(f"{len(failed)} of {len(results)} devices were not created in ChirpStack",
                         hint="see the table; fix and run again: devices created already are reported 'exists'")
