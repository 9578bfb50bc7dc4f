"""`fleet rollout`: staged rollouts of a published release to one kommune's devices."""

import os

import click

from ..rollout import OtaStore, parse_percent, parse_waves
from .common import echo_json

db_option = click.option("--db", "db_url", envvar="FLEET_DB",
                         help="Registry database URL (default: the local SQLite file; FLEET_DB).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
which_options = [click.option("--kommune", help="Kommunekode (its newest rollout), e.g. 751."),
                 click.option("--id", "rollout_id", type=int, help="Rollout id (see status).")]


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
    click.echo("  " + ", ".join(f"{k.replace('_', ' ')} {c[k]}" for k in
                                ("pending", "downloading", "installed", "confirmed", "failed", "rolled_back"))
               + f" of {c['total']}")
    if d["note"]:
        click.echo(f"  note: {d['note']}")


@click.group("rollout")
def command():
    """Roll a published release out in waves, halting by itself when too many devices fail.

    \b
    Example:
      fleet rollout start --release 1.4.0 --kommune 751 --waves 5%,25%,100% --halt-at 10% --repo ./updates
      fleet rollout status --kommune 751
      fleet rollout pause --kommune 751
      fleet rollout resume --kommune 751
      fleet rollout abort --kommune 751
    """


@command.command("start")
@click.option("--release", "version", required=True, help="Release version, as published (fleet release publish).")
@click.option("--kommune", required=True, help="Kommunekode, e.g. 751.")
@click.option("--waves", default="5%,25%,100%", show_default=True,
              help="Cumulative shares of the devices, the last 100%.")
@click.option("--halt-at", default="10%", show_default=True,
              help="Halt by itself when more than this share of the devices in open waves failed.")
@click.option("--board", help="Only devices of this board (default: every board the release is built for).")
@click.option("--repo", "repo_dir", envvar="FLEET_REPO", type=click.Path(file_okay=False, exists=True),
              help="The update repository the release was published to (FLEET_REPO).")
@db_option
@json_option
def start(version, kommune, waves, halt_at, board, repo_dir, db_url, as_json):
    """Start a rollout: the first wave's devices are told to take the release at their next check-in.

    \b
    Example:
      fleet rollout start --release 1.4.0 --kommune 751 --waves 5%,25%,100% --halt-at 10% --repo ./updates
    """
    w, h = parse_waves(waves), parse_percent(halt_at, "--halt-at")
    store = OtaStore.open(db_url)
    try:
        view = store.start(kommune=kommune, version=version, waves=w, halt_at=h, repo_dir=repo_dir, board=board,
                           operator=os.environ.get("FLEET_OPERATOR", "fleet"))
    finally:
        store.close()
    _show(view, as_json)


@command.command("status")
@_which
@click.option("--all", "show_all", is_flag=True, help="Every rollout (one line each), not only the newest.")
@click.option("--devices", is_flag=True, help="List each device's wave and state.")
@db_option
@json_option
def status(kommune, rollout_id, show_all, devices, db_url, as_json):
    """Show a rollout: its state, open waves and how many devices are where.

    \b
    Example:
      fleet rollout status --kommune 751 --devices
      fleet rollout status --all --json
    """
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
            click.echo(f"  {d['device']}  wave {d['wave']}  {d['state']:<11} {d['reason'] or ''}")


def _changer(name, verb, doc):
    @command.command(name, help=doc)
    @_which
    @click.option("--note", help="Why (kept with the rollout).")
    @db_option
    @json_option
    def change(kommune, rollout_id, note, db_url, as_json):
        store = OtaStore.open(db_url)
        try:
            view = getattr(store, verb)(kommune=kommune, rollout_id=rollout_id, note=note)
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
