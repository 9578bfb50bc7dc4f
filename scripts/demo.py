#!/usr/bin/env python3
"""A virtual fleet end to end: start three virtual boards, deploy the app to each over serial, read back
what each one runs, show a table, stop them. Runs in a private simulator directory; leaves nothing behind."""

import argparse
import os
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fleet.errors import FleetError  # noqa: E402
from fleet.resources import firmware_dir  # noqa: E402
from fleet.sim import manager  # noqa: E402
from provisioning.deploy import bundle, deploy, running_app  # noqa: E402
from provisioning.session import Session  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--baud", type=int, default=None, help="limit each board's serial line (e.g. 115200)")
    args = ap.parse_args(argv)
    con = Console()
    with tempfile.TemporaryDirectory(prefix="bysans-demo-") as d:
        os.environ["BYSANS_SIM_DIR"] = d
        try:
            run(con, args)
        except FleetError as e:
            con.print(f"[red]error:[/red] {e.message}")
            if e.hint:
                con.print(f"hint: {e.hint}")
            return 1
        finally:
            manager.stop_all()
    return 0


def run(con, args):
    con.rule("[bold]Bysans virtual fleet")
    con.print(f"$ fleet sim start --count {args.count}" + (f" --baud {args.baud}" if args.baud else ""))
    boards = manager.start(count=args.count, baud=args.baud)
    for b in boards:
        con.print(f"  {b.name}: serial port {b.port}")

    files = bundle(firmware_dir())
    con.print(f"\nDeploying the app bundle ({len(files)} files, {sum(map(len, files.values()))} bytes) over serial:")
    rows = []
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), console=con) as progress:
        tasks = {b.name: progress.add_task(f"  {b.name}", total=sum(map(len, files.values()))) for b in boards}
        for b in boards:
            with Session(b.port) as s:
                report = deploy(s, files, progress=lambda n, t, k=tasks[b.name]: progress.update(k, completed=n))
            rows.append((b, report))

    con.print("\nRebooting each board into its app and reading back what it runs:")
    table = Table("board", "port", "app", "type", "last reset", "written", "verified")
    for b, report in rows:
        b.reset()
        b.wait_prompt()  # the app has run (and, not configured, returned to the REPL)
        with Session(b.port, soft_reset=False) as s:  # Ctrl-C the app, don't reboot it: ask what it saw
            info = running_app(s)
        table.add_row(b.name, b.port, f"bysans {info['version']}", info["board"], info["reset_cause"],
                      str(len(report.written)), "sha256 ok")
    con.print(table)
    con.print("\n$ fleet sim stop --all")
    stopped = manager.stop_all()
    con.print(f"  stopped {', '.join(stopped)}")


if __name__ == "__main__":
    sys.exit(main())
