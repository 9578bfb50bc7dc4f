"""`fleet ota`: put a board on OTA updates over serial, and make it check in now (docs/ota.md)."""

import click

from ..errors import UsageError
from .common import echo_json
from .ports import port_ref

db_option = click.option("--db", "db_url", envvar="FLEET_DB",
                         help="Registry database URL (default: the local SQLite file; FLEET_DB).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
port_option = click.option("--port", required=True,
                           help="Serial port of the board, or sim:NAME for a virtual board.")


def _sessions(port):
    """A function that opens a new Session on the board's current port (a virtual board's pty may change)."""
    from provisioning.session import Session

    ref = port_ref(port)

    def open_session():
        return Session(ref.current() or ref.name)

    return open_session


@click.group("ota")
def command():
    """Put a board on over-the-air updates, and make it check in now.

    \b
    Example:
      fleet ota enable --port sim:vb1 --release rel-1.0.0 --server http://127.0.0.1:8080
      fleet ota check-in --port sim:vb1
    """


@command.command("enable")
@port_option
@click.option("--release", "release_dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="A signed release (fleet release sign): it goes into app slot a.")
@click.option("--server", required=True, help="The URL of 'fleet serve' the board checks in with.")
@click.option("--device", help="Device id (default: the DevEUI 'fleet enroll --port' wrote to the board).")
@click.option("--kommune", help="Kommunekode (default: the kommune the board was enrolled for).")
@click.option("--poll", "poll_s", type=click.IntRange(min=60), default=3600, show_default=True,
              help="Seconds between the board's own check-ins (the server may change it).")
@click.option("--keys", "keys_dir", envvar="FLEET_KEYS_DIR", type=click.Path(file_okay=False),
              help="Key directory whose newest root the board will trust (FLEET_KEYS_DIR).")
@db_option
@json_option
def enable(port, release_dir, server, device, kommune, poll_s, keys_dir, db_url, as_json):
    """Put a board on OTA: the release into app slot a, the root it will trust, its settings (server, device
    id, kommune) and a check-in key of its own, made here, written to the board and sealed in the registry.

    The key is never shown. The board boots slot a from its next reset; 'fleet ota check-in' makes it
    check in at once.

    \b
    Example:
      fleet ota enable --port /dev/ttyUSB0 --release rel-1.0.0 --server https://ota.example.dk
      fleet ota enable --port sim:vb1 --release rel-1.0.0 --server http://127.0.0.1:8080 \\
          --device 70B3D57ED0000001 --kommune 751 --json
    """
    from provisioning.ota import enable as _enable, enrolled_identity

    from ..keys import KeyStore
    from ..release.metadata import kommunekode
    from ..rollout import OtaStore

    root = KeyStore(keys_dir).latest_root_bytes()
    open_session = _sessions(port)
    store = OtaStore.open(db_url)
    try:
        with open_session() as s:
            known = enrolled_identity(s) if not (device and kommune) else {}
            device = device or known.get("device")
            kommune = kommune or known.get("kommune")
            if not device or not kommune:
                raise UsageError(f"the board on {port} is not enrolled: give --device and --kommune",
                                 hint="or enroll it first: fleet enroll --port PORT --kommune K ...")
            config = {"server": server.rstrip("/"), "device": device.upper(), "kommune": kommunekode(kommune),
                      "poll_s": poll_s}
            dev, report = _enable(s, release_dir, root=root, config=config, store=store)
    finally:
        store.close()
    out = {"device": dev, "kommune": config["kommune"], "server": config["server"], "port": port,
           "slot": "a", "files_written": len(report.written), "files_unchanged": len(report.unchanged),
           "checkin_key": "written"}
    if as_json:
        echo_json(out)
    else:
        click.echo(f"device {dev} (kommune {config['kommune']}) is on OTA: {len(report.written)} files written "
                   f"to slot a ({len(report.unchanged)} unchanged), checks in with {config['server']}; its "
                   f"check-in key is on the board and sealed in the registry")


@command.command("check-in")
@port_option
@click.option("--timeout", type=click.FloatRange(min=1), default=120, show_default=True,
              help="Seconds to wait for the check-in (and, after an update, for the board to boot it).")
@json_option
def check_in(port, timeout, as_json):
    """Make a board check in now, over serial, and say what happened: what it runs, what the server
    answered, whether it took a release, and (when it did) what it runs after its reset: the new release,
    confirmed by its self-test, or the old one, rolled back.

    \b
    Example:
      fleet ota check-in --port /dev/ttyUSB0
      fleet ota check-in --port sim:vb1 --json
    """
    from provisioning.ota import check_in as _check_in

    r = _check_in(_sessions(port), timeout=timeout)
    if as_json:
        echo_json(r)
        return
    b, o = r["before"], r["outcome"]
    click.echo(f"runs {b['version']} (slot {b['slot']})")
    if not r["answered"]:
        click.echo(f"server: no answer ({o.get('reason')}: {o.get('detail')})")
    elif r["take"]:
        click.echo(f"server: take {r['take']}")  # a repository path: the channel, or a rollout's manifest
    else:
        click.echo("server: nothing to take")
    if not r["took"]:
        why = f" {o['reason']}" + (f" ({o['detail']})" if o.get("detail") else "") if o.get("reason") else ""
        same = " (it runs that release already)" if o["state"] == "confirmed" and r["take"] else ""
        click.echo(f"outcome: {o['state']}{why}{same}; took no release")
        return
    a = r["after"]
    last = a.get("last") or {}
    click.echo(f"outcome: took release {o['target'][:12]}, reset into it")
    if last.get("state") == "confirmed":
        click.echo(f"after the reset: runs {a['version']} (slot {a['slot']}), confirmed by its self-test")
    else:
        click.echo(f"after the reset: runs {a['version']} (slot {a['slot']}), {last.get('state')}: "
                   f"{last.get('reason')}")
    if a.get("report"):
        click.echo(f"its report to the server failed: {a['report']}")
