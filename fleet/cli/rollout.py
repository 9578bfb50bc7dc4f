"""`fleet rollout`: staged rollouts of a published release to one kommune's devices."""

from pathlib import Path

import click

from ..errors import UsageError
from ..release.metadata import parse_duration
from ..rollout import DEVICE_STATES, OtaStore, parse_percent, parse_waves
from .common import echo_json
from .devices import operator_name, operator_option
from .ports import port_ref

db_option = click.option("--db", "db_url", envvar="FLEET_DB",
                         help="Registry database URL (default: the local SQLite file; FLEET_DB).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
which_options = [click.option("--kommune", help="Kommunekode (its newest rollout), e.g. 751."),
                 click.option("--id", "rollout_id", type=int, help="Rollout id (see status)."),
                 click.option("--via", type=click.Choice(["http", "lorawan"]), default="http", show_default=True,
                              help="Which rollouts: HTTP check-ins, or LoRaWAN (FUOTA) deployments.")]


def _which(f):
    for opt in reversed(which_options):
        f = opt(f)
    return f


def _show(view, as_json):
    if as_json:
        echo_json(view.as_dict())
        return
    d = view.as_dict()
    c = d["counts"]
    click.echo(f"rollout {d['id']}: {d['version']} to kommune {d['kommune']} ({', '.join(d['boards'])}) - "
               f"{d['state']}, wave {d['open_waves']} of {len(d['waves'])} ({', '.join(d['waves'])}), "
               f"halts above {d['halt_at']} failed")
    click.echo(f"  device order: seed {d['seed'] or '(none: started before seeds)'}; waves time out "
               + (f"after {d['wave_timeout']}" if d["wave_timeout"] else "never (--wave-timeout)"))
    click.echo("  " + ", ".join(f"{k.replace('_', ' ')} {c[k]}" for k in DEVICE_STATES) + f" of {c['total']}")
    dg = d.get("diagnostics") or {}
    if dg.get("new", {}).get("checkins") or dg.get("old", {}).get("checkins") or d.get("soak"):
        n, o = dg.get("new", {}), dg.get("old", {})

        def rate(g, k):
            return f"{g[k] / g['checkins']:.2f}" if g.get("checkins") else "-"

        click.echo(f"  diagnostics (soak {d.get('soak') or 0} check-ins): new release {rate(n, 'resets')} resets, "
                   f"{rate(n, 'watchdog_resets')} watchdog per check-in ({n.get('devices', 0)} devices); old "
                   f"{rate(o, 'resets')}, {rate(o, 'watchdog_resets')} ({o.get('devices', 0)} devices)")
    ck = d.get("checkins") or {}
    if ck.get("keyless") or ck.get("rejected"):
        click.echo(f"  check-ins: {ck.get('keyless', 0)} devices without a check-in key, "
                   f"{ck.get('rejected', 0)} check-ins rejected")
    if d["note"]:
        click.echo(f"  note: {d['note']}")


@click.group("rollout")
def command():
    """Roll a published release out in waves, halting by itself when too many devices fail.

    \b
    Example:
      fleet rollout start --release 1.4.0 --kommune 751 --waves 5%,25%,100% --halt-at 10% \\
          --wave-timeout 24h --repo ./updates
      fleet rollout status --kommune 751
      fleet rollout pause --kommune 751
      fleet rollout resume --kommune 751
      fleet rollout abort --kommune 751
      fleet rollout checkin-key --port /dev/ttyUSB0
      fleet rollout status --via lorawan --kommune 751 --devices
      fleet rollout next --via lorawan --kommune 751
    """


@command.command("start")
@click.option("--release", "version", required=True, help="Release version, as published (fleet release publish).")
@click.option("--kommune", required=True, help="Kommunekode, e.g. 751.")
@click.option("--waves", default="5%,25%,100%", show_default=True,
              help="Cumulative shares of the devices, the last 100%.")
@click.option("--halt-at", default="10%", show_default=True,
              help="Halt by itself when more than this share of the devices in open waves failed.")
@click.option("--wave-timeout", metavar="DURATION",
              help="Devices of an open wave not heard from for this long (e.g. 24h, 2d) count as silent: they no "
                   "longer hold the next wave back. Default: a wave waits for every device.")
@click.option("--soak", type=click.IntRange(0, 10000), default=0, show_default=True, metavar="N",
              help="A device that confirmed the release holds its wave open until it has checked in N times on it, "
                   "so its resets and watchdog resets are compared with the old release's first (halt threshold, "
                   "read per check-in). 0: a wave opens once its devices confirmed.")
@click.option("--seed", help="Orders the devices into waves (default: a new random one; status shows it). The "
                             "same seed and devices give the same order.")
@click.option("--board", help="Only devices of this board (default: every board the release is built for).")
@click.option("--repo", "repo_dir", envvar="FLEET_REPO", type=click.Path(file_okay=False, exists=True),
              help="The update repository the release was published to (FLEET_REPO).")
@click.option("--via", type=click.Choice(["http", "lorawan"]), default="http", show_default=True,
              help="http: devices take the release at their check-ins. lorawan: a FUOTA deployment (one multicast "
                   "class C session per wave) for LoRaWAN-only devices; writes its folder (-o) with the first "
                   "wave's session and keeps the rollout, moved by the answers ingest hears.")
@click.option("--release-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="lorawan: the signed release folder the payload is built from.")
@click.option("--from", "from_version", help="lorawan: the version the devices run now (its manifest from --repo).")
@click.option("--base-manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="lorawan: the manifest the devices run now, instead of --from.")
@click.option("--dr", type=click.IntRange(0, 5), default=5, show_default=True,
              help="lorawan: the multicast data rate (EU868 DR0-DR5); sets the fragment size.")
@click.option("--loss", default="10%", show_default=True, help="lorawan: the expected share of fragments lost; "
                                                                 "sets the redundancy.")
@click.option("--session-in", default="24h", show_default=True, metavar="DURATION",
              help="lorawan: the class C session starts this long from now (time for the set-up, class A).")
@click.option("--session-at", type=click.IntRange(0, 0xFFFFFFFF), metavar="GPS",
              help="lorawan: the class C session starts at this GPS time (s since 1980-01-06, the time the devices "
                   "sync by TS003), instead of --session-in: a slot the network server gives.")
@click.option("--device", "devices", multiple=True, help="lorawan: only these DevEUIs (repeatable).")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="lorawan: the deployment folder to write.")
@click.option("--chirpstack-application-id", help="lorawan: also write chirpstack.json (ChirpStack v4.12+ "
                                                   "FuotaService bodies) for this application ...")
@click.option("--chirpstack-device-profile-id", help="lorawan: ... and this device profile.")
@operator_option
@db_option
@json_option
def start(version, kommune, waves, halt_at, wave_timeout, soak, seed, board, repo_dir, via, release_dir, from_version,
          base_manifest, dr, loss, session_in, session_at, devices, out_dir, chirpstack_application_id,
          chirpstack_device_profile_id, operator, db_url, as_json):
    """Start a rollout: the first wave's devices are told to take the release at their next check-in.

    Each rollout shuffles the devices by its own seed, so the canaries differ from one rollout to the next.
    A device that went silent after it had started to take the release counts as failed (halt threshold);
    one that never checked in does not. A wave also halts when the new release's resets or watchdog resets
    per check-in exceed those of the devices still on the old release by more than the halt threshold
    (docs/fleet-admin.md, "Diagnostics per release"). The start, and every pause, resume and abort, is written to the
    audit log with the operator's name (--operator / FLEET_OPERATOR, default: login name).

    \b
    Example:
      fleet rollout start --release 1.4.0 --kommune 751 --waves 5%,25%,100% --halt-at 10% --repo ./updates
      fleet rollout start --release 1.4.0 --kommune 751 --wave-timeout 24h --repo ./updates
      fleet rollout start --release 1.4.0 --kommune 751 --soak 24 --repo ./updates
      fleet rollout start --via lorawan --release 1.4.0 --release-dir rel-1.4.0 --from 1.3.0 --repo ./updates \\
          --kommune 751 --board virtual --dr 5 --loss 10% -o fuota-1.4.0
    """
    w, h = parse_waves(waves), parse_percent(halt_at, "--halt-at")
    if via == "lorawan":
        from . import rollout_lorawan as L

        _, _, summary = L.start(
            version=version, kommune=kommune, waves=w, halt_at=h, seed=seed, board=board, repo_dir=repo_dir,
            release_dir=release_dir, from_version=from_version, base_manifest=base_manifest, dr=dr,
            loss=parse_percent(loss, "--loss") / 1000, session_in_s=parse_duration(session_in), out_dir=out_dir,
            session_at=session_at, devices=devices, chirpstack_app=chirpstack_application_id,
            chirpstack_profile=chirpstack_device_profile_id, operator=operator_name(operator), db_url=db_url,
            wave_timeout_s=parse_duration(wave_timeout) if wave_timeout else None)
        if as_json:
            echo_json(summary)
        else:
            L.show(summary)
        return
    given = [n for n, v in (("--release-dir", release_dir), ("--from", from_version),
                            ("--base-manifest", base_manifest), ("--device", devices), ("--out", out_dir),
                            ("--chirpstack-application-id", chirpstack_application_id)) if v]
    if given:
        raise UsageError(f"{given[0]} is for --via lorawan", hint="add --via lorawan, or leave it out for HTTP")
    timeout_s = parse_duration(wave_timeout) if wave_timeout else None
    store = OtaStore.open(db_url)
    try:
        view = store.start(kommune=kommune, version=version, waves=w, halt_at=h, repo_dir=repo_dir, board=board,
                           operator=operator_name(operator), wave_timeout_s=timeout_s,
                           seed=seed, soak=soak)
    finally:
        store.close()
    _show(view, as_json)


@command.command("status")
@_which
@click.option("--all", "show_all", is_flag=True, help="Every rollout (one line each), not only the newest.")
@click.option("--devices", is_flag=True, help="List each device's wave and state.")
@db_option
@json_option
def status(kommune, rollout_id, via, show_all, devices, db_url, as_json):
    """Show a rollout: its state, open waves and how many devices are where.

    --devices lists them in rollout order (the seed's), with wave, state and reason; "silent" means not
    heard from within the wave timeout (reason: what it was doing before).

    \b
    Example:
      fleet rollout status --kommune 751 --devices
      fleet rollout status --all --json
      fleet rollout status --via lorawan --kommune 751 --devices --json
    """
    if via == "lorawan":
        _status_lorawan(kommune, rollout_id, show_all, devices, db_url, as_json)
        return
    store = OtaStore.open(db_url)
    try:
        if show_all:
            views = store.list(kommune=kommune)
            if as_json:
                echo_json([v.as_dict() for v in views])
            else:
                for v in views:
                    _show(v, False)
            return
        view = store.status(kommune=kommune, rollout_id=rollout_id)
    finally:
        store.close()
    _show(view, as_json)
    if devices and not as_json:
        for d in view.devices:
            key = "" if d["checkin_key"] else "  (no check-in key)"
            click.echo(f"  {d['position']:>4}. {d['device']}  wave {d['wave']}  {d['state']:<11} "
                       f"{d['reason'] or ''}{key}".rstrip())


def _status_lorawan(kommune, rollout_id, show_all, devices, db_url, as_json):
    from ..fuota.store import FuotaStore
    from . import rollout_lorawan as L

    store = FuotaStore.open(db_url)
    try:
        if show_all:
            views = store.list(kommune=kommune)
            if as_json:
                echo_json(views)
            else:
                for v in views:
                    L.show_status(v)
            return
        view = store.status(kommune=kommune, rollout_id=rollout_id)
    finally:
        store.close()
    if as_json:
        echo_json(view if devices else {k: v for k, v in view.items() if k != "devices"})
    else:
        L.show_status(view, devices)


def _changer(name, verb, doc):
    @command.command(name, help=doc)
    @_which
    @click.option("--note", help="Why (kept with the rollout and in the audit log).")
    @operator_option
    @db_option
    @json_option
    def change(kommune, rollout_id, via, note, operator, db_url, as_json):
        if via == "lorawan":
            from ..fuota.store import FuotaStore
            from . import rollout_lorawan as L

            fstore = FuotaStore.open(db_url)
            try:
                view = getattr(fstore, verb)(kommune=kommune, rollout_id=rollout_id, note=note,
                                             operator=operator_name(operator))
            finally:
                fstore.close()
            if as_json:
                echo_json(view)
            else:
                L.show_status(view)
            return
        store = OtaStore.open(db_url)
        try:
            view = getattr(store, verb)(kommune=kommune, rollout_id=rollout_id, note=note,
                                        operator=operator_name(operator))
        finally:
            store.close()
        _show(view, as_json)

    return change


_changer("pause", "pause", "Pause a running rollout: no further device is told to take the release.\n\n"
         "\b\nExample:\n  fleet rollout pause --kommune 751 --note 'bin lids report wrong levels'")
_changer("resume", "resume", "Resume a paused or halted rollout (failures so far are forgiven).\n\n"
         "\b\nExample:\n  fleet rollout resume --kommune 751")
_changer("abort", "abort", "Abort a rollout: devices that have not updated stay on what they run.\n\n"
         "\b\nExample:\n  fleet rollout abort --kommune 751 --note 'replaced by 1.4.1'")


@command.command("next")
@click.option("--kommune", help="Kommunekode (its newest LoRaWAN rollout), e.g. 751.")
@click.option("--id", "rollout_id", type=int, help="LoRaWAN rollout id (fleet rollout status --via lorawan).")
@click.option("--via", type=click.Choice(["lorawan"]), default="lorawan", show_default=True,
              help="Only LoRaWAN rollouts have sessions (an HTTP rollout's devices ask at their check-ins).")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The deployment folder (default: the one the rollout was started with).")
@click.option("--session-in", default="24h", show_default=True, metavar="DURATION",
              help="The class C session starts this long from now (time for the class A set-up).")
@click.option("--chirpstack-application-id", help="Also write the session's ChirpStack v4.12+ FuotaService "
                                                   "bodies (chirpstack.json) for this application ...")
@click.option("--chirpstack-device-profile-id", help="... and this device profile.")
@operator_option
@db_option
@json_option
def next_session(kommune, rollout_id, via, out_dir, session_in, chirpstack_application_id,
                 chirpstack_device_profile_id, operator, db_url, as_json):
    """Prepare the next wave's multicast session of a LoRaWAN rollout.

    Once a wave's devices are confirmed, failed or rolled back (or its --wave-timeout passed) and the
    failures stay under the halt threshold, the next wave opens; this writes the session for exactly its
    devices (a fresh multicast group) into the deployment folder's session-N/: unicast.txt, frames.txt,
    fragments.txt (and chirpstack.json). Refused, saying why, while no device waits for one. Audited.

    \b
    Example:
      fleet rollout next --via lorawan --kommune 751
      fleet rollout next --via lorawan --kommune 751 -o fuota-1.1.0 --session-in 2h --json
    """
    from . import rollout_lorawan as L

    summary = L.next_session(kommune=kommune, rollout_id=rollout_id, folder=out_dir,
                             session_in_s=parse_duration(session_in), chirpstack_app=chirpstack_application_id,
                             chirpstack_profile=chirpstack_device_profile_id, operator=operator_name(operator),
                             db_url=db_url)
    if as_json:
        echo_json(summary)
    else:
        L.show_next(summary)


@command.command("checkin-key")
@click.option("--port", required=True, help="Serial port of the board, or sim:NAME for a virtual board.")
@click.option("--device", help="Refuse unless the board is this device (its id in /ota/config.json).")
@db_option
@json_option
def checkin_key(port, device, db_url, as_json):
    """Give a board a new check-in key: written into its /ota/config.json and sealed into the registry.

    The key is never shown. Boards provisioned before check-in keys need one (until then only
    'fleet serve --accept-keyless' accepts their check-ins); a board whose key was lost or copied gets a
    new one the same way, and the old key stops working.

    \b
    Example:
      fleet rollout checkin-key --port /dev/ttyUSB0
      fleet rollout checkin-key --port /dev/ttyUSB0 --device 70B3D57ED0000001 --json
    """
    from provisioning.ota import give_checkin_key
    from provisioning.session import Session

    from ..errors import PortNotFound
    from .ports import port_path, with_ports_hint

    path = port_path(port)
    store = OtaStore.open(db_url)
    try:
        with Session(path) as s:
            dev = give_checkin_key(s, store, device=device)
    except PortNotFound as e:
        raise with_ports_hint(e) from None
    finally:
        store.close()
    if as_json:
        echo_json({"device": dev, "port": port, "checkin_key": "written"})
    else:
        click.echo(f"device {dev}: a new check-in key is on the board ({port}) and sealed in the registry")
