"""`fleet status`: the fleet at a glance, per kommune."""

import click

from ..telemetry.status import fleet_status, ingest_line
from .common import echo_json
from .devices import ROLE_HELP, registry_options
from .ingest import make_rules, rules_options
from .output import print_table


@click.command("status", epilog=ROLE_HELP)
@registry_options
@rules_options
@click.option("--limit", default=10, show_default=True, help="Rows in each list (full bins, silent, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def command(ctx_reg, full_pct, battery_v, silent_intervals, limit, as_json):
    """Devices per kommune, full bins and when the next ones fill, silent nodes, low batteries, nodes with
    no network (their WiFi join failed), open alerts and rollout progress.

    \b
    Example:
      fleet status --kommune 751
      fleet status --role cross-kommune --json
    """
    reg, op, kfilter = ctx_reg()
    try:
        st = fleet_status(reg, op, kommune=kfilter, rules=make_rules(full_pct, battery_v, silent_intervals),
                          list_limit=limit)
    finally:
        reg.close()
    if as_json:
        echo_json(st)
        return
    render(st)


def render(st: dict) -> None:
    th = st["thresholds"]
    rows = [[f"{k['kode']} {k['navn'] or ''}", str(k["devices"]), str(k["active"]), _warn(k["silent"]),
             str(k["never_heard"]), _warn(k["full"]), _warn(k["low_battery"])] for k in st["kommuner"]]
    if len(st["kommuner"]) > 1:
        tot = st["totals"]
        rows.append(["[bold]all[/]", str(tot["devices"]), str(tot["active"]), _warn(tot["silent"]),
                     str(tot["never_heard"]), _warn(tot["full"]), _warn(tot["low_battery"])])
    print_table(rows, ("kommune", "devices", "active", "silent", "never heard", f"full (>= {th['full_pct']:g} %)",
                       f"battery < {th['battery_v']:g} V"), title="Devices per kommune", markup=True)
    if not st["kommuner"]:
        click.echo("no devices (enroll some with 'fleet enroll')")
    alerts = st["alerts"]
    click.echo("open alerts: " + (", ".join(f"{k} {n}" for k, n in sorted(alerts.items())) or "none"))
    click.echo(ingest_line(st.get("ingest") or []))
    _list("Full bins", st["full"], lambda d: f"{d['fill_pct']:.0f} %")
    _list("Filling up (forecast)", st["filling_up"],
          lambda d: f"{d['fill_pct']:.0f} %, " + ("expected full since " if d.get("overdue") else "full at ")
          + f"{d['full_at'][:16].replace('T', ' ')} UTC" + (" (no reading since)" if d.get("overdue") else ""))
    _list("Silent nodes", st["silent"],
          lambda d: "last seen " + (d["last_seen"][:16].replace("T", " ") + " UTC" if d["last_seen"] else "never"))
    _list("Low battery", st["low_battery"], lambda d: f"{d['battery_v']:.2f} V")
    _list("No network (the WiFi join failed; updates wait)", st.get("no_network") or [],
          lambda d: f"WiFi {d['net_status']}")
    ro = st["rollouts"]
    if ro is None:
        click.echo("rollouts: not tracked in this registry")
    elif not ro:
        click.echo("rollouts: none")
    else:
        print_table([[str(r["id"]), r["name"], str(r["state"] or ""),
                      ", ".join(f"{k} {v}" for k, v in sorted(r["devices"].items())) or "-", f"{r['done_pct']:.0f} %"]
                     for r in ro], ("id", "release", "state", "devices", "done"), title="Rollouts")


def _warn(n: int) -> str:
    return f"[yellow]{n}[/]" if n else "0"


def _list(title, rows, detail) -> None:
    if not rows:
        return
    click.echo(title)
    for d in rows:
        click.echo(f"  {d['dev_eui']}  {d['kommune_kode']}  {d['site'] or ''}  {detail(d)}")
