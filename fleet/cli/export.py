"""`fleet export`: the registry's devices to network servers (OS2iot bulk CSV, ChirpStack v4 REST API,
The Things Stack JSON)."""

import os

import click

from ..errors import UsageError
from ..exports import chirpstack, os2iot, tts
from .common import echo_json
from .devices import ROLE_HELP, print_table, registry_options


@click.group("export", epilog=ROLE_HELP)
def command():
    """Hand devices and their keys to a network server: OS2iot's bulk import, ChirpStack's API or The
    Things Stack's import file.

    All read AppKeys; every key read is recorded in the audit log with who and why.

    \b
    Example:
      fleet export os2iot --kommune 751 --device-profile-id 2c8cd1d4-3b7e-4c8e-9f1a-6d5e4b3a2f10 --out os2iot/
      CS_KEY=... fleet export chirpstack --url http://chirpstack:8090 --api-key-env CS_KEY \\
          --application-id 9a1c1f9e-2a7c-4c39-9d0e-5d7d5f3a0001 \\
          --device-profile-id 2c8cd1d4-3b7e-4c8e-9f1a-6d5e4b3a2f10
      fleet export tts --kommune 751 --application-id aarhus-affald --out devices.json
    """


@command.command("os2iot")
@registry_options
@click.option("--device-profile-id", required=True, metavar="UUID",
              help="The device profile's id in OS2iot (LoRaWAN > device profiles), a UUID.")
@click.option("--device-model-id", default="", metavar="ID", help="OS2iot device model id (optional).")
@click.option("--out", required=True, type=click.Path(),
              help="A directory (files os2iot-001.csv, ... of 50 devices each) or one .csv file (<= 50 devices).")
@click.option("--json", "as_json", is_flag=True, help="Print the files written and the counts as JSON (no keys).")
def os2iot_(ctx_reg, device_profile_id, device_model_id, out, as_json):
    """Write OS2iot's bulk-import CSV (OTAA devices with AppKeys; files of 50, mode 0600).

    OS2iot's rules are checked before anything is written: names of at most 50 characters, a UUID for the
    device profile. A device without a position is exported with a warning (OS2iot puts it at 0,0).

    \b
    Example:
      fleet export os2iot --kommune 751 --device-profile-id 2c8cd1d4-3b7e-4c8e-9f1a-6d5e4b3a2f10 --out os2iot/
    """
    reg, op, kfilter = ctx_reg()
    with reg:
        files, n, warnings = os2iot.export(reg, op, out, device_profile_id=device_profile_id, kommune=kfilter,
                                           device_model_id=device_model_id)
    if as_json:
        echo_json({"files": [str(f) for f in files], "devices": n, "warnings": list(warnings)})
        return
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    for f in files:
        click.echo(str(f))
    click.echo(f"{n} devices in {len(files)} file{'s' if len(files) != 1 else ''}; the files hold AppKeys: "
               "import them into OS2iot, then delete them", err=True)


@command.command("chirpstack")
@registry_options
@click.option("--url", help="ChirpStack's REST API, e.g. http://chirpstack:8090.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Instead of --url: write the REST requests (with the keys) to this file, mode 0600.")
@click.option("--api-key-env", default="CHIRPSTACK_API_KEY", show_default=True, metavar="VAR",
              help="Environment variable that holds the API token (never give a token on the command line).")
@click.option("--application-id", required=True, metavar="UUID", help="ChirpStack application id.")
@click.option("--device-profile-id", required=True, metavar="UUID", help="ChirpStack device profile id.")
@click.option("--dev-eui", "dev_euis", multiple=True, metavar="DEVEUI", help="Only these devices (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def chirpstack_(ctx_reg, url, out, api_key_env, application_id, device_profile_id, dev_euis, as_json):
    """Create devices and their OTAA keys in ChirpStack v4 through its REST API.

    Devices that exist in ChirpStack already are reported as 'exists' and left unchanged. The keys are
    ChirpStack v4.12+'s device keys: the AppKey as nwkKey (LoRaWAN 1.0.x), appKey, and genAppKey, the key
    ChirpStack's FUOTA derives the multicast key-encryption key from (docs/formats/fuota.md, "ChirpStack v4").
    --out FILE writes the same requests to a file (mode 0600) instead, for a ChirpStack this host cannot reach.

    \b
    Example:
      export CHIRPSTACK_API_KEY=eyJ0eXAiOiJKV1Qi...
      fleet export chirpstack --url http://chirpstack:8090 --kommune 751 \\
          --application-id 9a1c1f9e-2a7c-4c39-9d0e-5d7d5f3a0001 \\
          --device-profile-id 2c8cd1d4-3b7e-4c8e-9f1a-6d5e4b3a2f10
      fleet export chirpstack --out chirpstack-devices.jsonl --kommune 751 \\
          --application-id 9a1c1f9e-2a7c-4c39-9d0e-5d7d5f3a0001 \\
          --device-profile-id 2c8cd1d4-3b7e-4c8e-9f1a-6d5e4b3a2f10
    """
    if bool(url) == bool(out):
        raise UsageError("give either --url (ChirpStack's REST API) or --out FILE (the requests in a file)",
                         hint="e.g. --url http://chirpstack:8090, or --out chirpstack-devices.jsonl")
    if out:
        reg, op, kfilter = ctx_reg()
        with reg:
            path, n = chirpstack.write(reg, op, out, application_id=application_id,
                                       device_profile_id=device_profile_id, kommune=kfilter, dev_euis=dev_euis)
        if as_json:
            echo_json({"files": [str(path)], "devices": n, "warnings": []})
            return
        click.echo(str(path))
        click.echo(f"{n} devices; the file holds AppKeys: send its requests to ChirpStack, then delete it", err=True)
        return
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


@command.command("tts")
@registry_options
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The file to write (one JSON end device a line; mode 0600).")
@click.option("--application-id", default="", metavar="ID",
              help="The Things Stack application id to put in each device (else give it on import).")
@click.option("--frequency-plan", "frequency_plan_id", default=tts.DEFAULT_FREQUENCY_PLAN, show_default=True,
              metavar="ID", help="The Things Stack frequency plan id.")
@click.option("--phy-version", default=tts.DEFAULT_PHY_VERSION, show_default=True,
              type=click.Choice(tts.PHY_VERSIONS), help="Regional parameters version (LoRaWAN 1.0.4 devices).")
@click.option("--json", "as_json", is_flag=True, help="Print the files written and the counts as JSON (no keys).")
def tts_(ctx_reg, out, application_id, frequency_plan_id, phy_version, as_json):
    """Write The Things Stack's end-device import file (The Things Stack JSON, with AppKeys).

    Import it in the Console (Applications > End devices > Import end devices, format "The Things Stack
    JSON") or with the CLI. Device ids are 'eui-' and the DevEUI.

    \b
    Example:
      fleet export tts --kommune 751 --application-id aarhus-affald --out devices.json
      ttn-lw-cli end-devices create --application-id aarhus-affald < devices.json
    """
    reg, op, kfilter = ctx_reg()
    with reg:
        path, n = tts.export(reg, op, out, kommune=kfilter, application_id=application_id,
                             frequency_plan_id=frequency_plan_id, phy_version=phy_version)
    if as_json:
        echo_json({"files": [str(path)], "devices": n, "warnings": []})
        return
    click.echo(str(path))
    click.echo(f"{n} devices; the file holds AppKeys: import it into The Things Stack, then delete it", err=True)
