"""`fleet serve`: the update repository, device check-ins, network-server pushes and the dashboard."""

import logging
from pathlib import Path

import click

from ..serve.app import ServeContext, build_app
from ..serve.server import Server


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port (0 picks a free one).")
@click.option("--repo", "repo_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Update repository to serve (made by 'fleet release publish').")
@click.option("--db", "db_url", envvar="FLEET_DB", help="Registry database URL (default: the local SQLite file).")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM): serve HTTPS.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM) for --cert.")
@click.option("--accept-keyless", is_flag=True, envvar="FLEET_ACCEPT_KEYLESS",
              help="Migration mode: accept check-ins without a MAC from known devices that have no check-in "
                   "key yet (provisioned before keys). Off by default (FLEET_ACCEPT_KEYLESS=1).")
def command(host, port, repo_dir, db_url, cert, key, accept_keyless):
    """Serve updates, check-ins, uplink pushes and the dashboard until Ctrl-C (or SIGTERM).

    Several servers may share one PostgreSQL registry (--db) behind a load balancer.

    Check-ins must carry a MAC made with the device's check-in key (docs/ota.md, "Check-in keys"); others
    are answered 401 and change nothing. GET /api/ota/checkins counts what was accepted and rejected.

    \b
    Example:
      fleet serve --repo ./updates --port 8080
      curl http://127.0.0.1:8080/healthz
      fleet serve --repo ./updates --accept-keyless   # while old boards get their keys
    """
    if key and not cert:
        raise click.UsageError("--key needs --cert")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ctx = ServeContext(repo_dir=repo_dir, db_url=db_url, options={"accept_keyless": bool(accept_keyless)})
    server = Server(build_app(ctx), host=host, port=port, certfile=cert, keyfile=key or None)
    if accept_keyless:
        click.echo("migration mode: known devices without a check-in key may check in unauthenticated "
                   "(fleet rollout status counts them as keyless)", err=True)
    click.echo(f"serving on {server.url} (Ctrl-C stops)")
    server.serve_forever()  # until SIGINT/SIGTERM; answers in flight and queued check-ins are finished
    server.stop()
