"""`fleet alerts`: the open alerts of the devices you may see."""

from datetime import datetime, timezone

import click

from ..telemetry import TelemetryStore
from .common import echo_json
from .devices import ROLE_HELP, registry_options
from .ingest import make_notifier, make_rules, rules_options
from .output import escape, print_table


@click.command("alerts", epilog=ROLE_HELP)
@registry_options
@click.option("--all", "include_resolved", is_flag=True, help="Resolved alerts too.")
@click.option("--check", is_flag=True,
              help="First look for silent nodes (as 'fleet ingest' does every minute) and send new alerts.")
@click.option("--ack", "ack_id", type=int, metavar="ID", help="Acknowledge alert ID instead of listing.")
@click.option("--webhook", metavar="URL", envvar="FLEET_ALERT_WEBHOOK", help="With --check: POST new alerts here.")
@rules_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def command(ctx_reg, include_resolved, check, ack_id, webhook, full_pct, battery_v, silent_intervals, as_json):
    """List alerts: full bins, fire, tilted or fallen bins, silent nodes, low batteries, lost uplinks.

    \b
    Example:
      fleet alerts --kommune 751
      fleet alerts --kommune 751 --check --json
      fleet alerts --kommune 751 --ack 12
    """
    reg, op, kfilter = ctx_reg()
    notifier = make_notifier(webhook, None, None) if check else None
    try:
        store = TelemetryStore(reg, rules=make_rules(full_pct, battery_v, silent_intervals), notifier=notifier)
        if ack_id is not None:
            a = store.ack_alert(op, ack_id)
            echo_json(a) if as_json else click.echo(f"alert {a['id']} ({a['kind']} on {a['dev_eui']}): {a['state']}")
            return
        if check:
            store.sweep()
        alerts = store.alerts(op, kommune=kfilter, include_resolved=include_resolved)
    finally:
        if notifier is not None:
            notifier.close()
        reg.close()
    if as_json:
        echo_json(alerts)
        return
    if not alerts:
        click.echo("no open alerts")
        return
    style = {"critical": "bold red", "warning": "yellow"}
    print_table(([str(a["id"]), _styled(escape(a["kind"]), style.get(a["severity"])), a["kommune_kode"],
                  a["dev_eui"], escape(a["site"] or ""), escape(a["message"] + _forecast(a)),
                  a["opened_at"][:16].replace("T", " "), a["state"]] for a in alerts),
                ("id", "kind", "kommune", "device", "site", "message", "since", "state"), markup=True)


def _forecast(a) -> str:
    if not a.get("full_at") or a["kind"] == "full":
        return ""
    when = a["full_at"][:16].replace("T", " ")
    if datetime.fromisoformat(a["full_at"]) <= datetime.now(timezone.utc):
        return f" (expected full since {when} UTC)"
    return f" (full at {when} UTC)"


def _styled(text: str, style: str | None) -> str:
    return f"[{style}]{text}[/]" if style else text
