"""`fleet flash`: the MicroPython base image (optional), the app and the board's config, then a self-test."""

import sys

import click

from ..errors import Interrupted, SelfTestFailed, UsageError
from .common import echo_json
from .devices import registry_options


# stages that are a step, not bytes on their way: their bar says where the step is (a "1/1 bytes" said nothing)
STEP_STAGES = frozenset({"self-test"})


def progress_bars(enabled: bool):
    """A rich Progress on stderr when it is a terminal (else None): one task per (board, stage). A task made
    with step=True (a stage in STEP_STAGES) shows 'running' or 'done' where a transfer shows its bytes."""
    if not enabled or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import Progress

    return Progress(*bar_columns(), console=Console(stderr=True), transient=False)


def bar_columns():
    from rich.progress import BarColumn, DownloadColumn, ProgressColumn, TextColumn
    from rich.text import Text

    class Amount(ProgressColumn):
        bytes_column = DownloadColumn()

        def render(self, task):
            if task.fields.get("step"):
                return Text("done" if task.finished else "running", style="progress.download")
            return self.bytes_column.render(task)

    return TextColumn("{task.description}"), BarColumn(), Amount()


def show_report(rep: dict):
    ident = rep.get("identity") or {}
    tr = rep.get("transfer") or {}
    st = rep.get("self_test") or {}
    click.echo(f"board:     {rep['board']} on {rep['port']} ({ident.get('machine', '?')})")
    im = rep.get("image") or {}
    if "vfs" in im:  # the image route
        if im.get("image_bytes"):
            click.echo(f"image:     {im['image_bytes']} bytes ({im['chip']}), MD5 verified")
        click.echo(f"files:     {len(tr.get('written', []))} files in a {im['filesystem_bytes']} byte filesystem at "
                   f"{im['vfs']['offset']:#x}, {im['baud']} baud, MD5 verified; {im['seconds']} s")
        click.echo("verified:  every file's SHA-256 on the board after the reset")
    else:
        if im:
            click.echo(f"image:     {im['bytes']} bytes at {im['offset']:#x} ({im['chip']})")
        click.echo(f"app:       {len(tr.get('written', []))} files written, {len(tr.get('unchanged', []))} unchanged, "
                   f"all verified (SHA-256 on the board)" + (f"; {rep['attempts']} attempts" if rep["attempts"] > 1 else ""))
    if rep.get("enrolled"):
        click.echo(f"enrolled:  {rep['enrolled']['dev_eui']} ({rep['enrolled']['name']}), its keys in the image, "
                   f"recorded after the read-back")
    click.echo(f"self-test: {'ok' if st.get('ok') else 'FAILED'} (app {st.get('app')}, board {st.get('board')})"
               + (f": {st['error']}" if st.get("error") else ""))
    for s in st.get("sensors", []):
        state = {True: "answers", False: "DOES NOT ANSWER", None: "not checked (UART)"}[s["answering"]]
        where = f"{s['bus']} {s['address']:#04x}" if s["address"] is not None else s["bus"]
        click.echo(f"  {s['type']:10} {where:12} {state}")


def interrupted_state(report, port: str) -> tuple[str, str]:
    """(message, hint) for a flash stopped by Ctrl-C: what state the board is in, from the report
    (provisioning.flash.FlashReport) it stopped with."""
    again = "run the same command again"
    stage = report.stage if report else "connecting"
    app = report.app if report else None
    if stage == "image":
        return ("interrupted while esptool was writing to the board's flash (the base image or the filesystem "
                "image): the flash holds part of it, and the board may not start",
                f"{again} (with the same --firmware; hold BOOT while pressing RESET if esptool cannot reach the "
                f"board): it writes the whole image again, then the app")
    if stage == "self-test" or stage == "done":
        n = len(app.written) + len(app.unchanged) if app else 0
        return (f"interrupted during the self-test: the app is on the board, all {n} files verified",
                f"{again} to repeat the self-test: nothing is written again")
    if app is not None and (app.stage == "writing" or app.entry_removed):
        if app.stage == "writing":
            done = f"{app.sent} of {len(app.to_write)} changed files had reached the board"
        else:
            done = "part of the app had been written before"
        return (f"interrupted while writing the app to {port}: {done}. Each file on the board is whole (old or "
                f"new), and /main.py is left off until the last file is written, so the board does not start "
                f"this partial app (it starts to the MicroPython prompt)",
                f"{again} to repair it: it writes what still differs, /main.py last, and checks every file by "
                f"SHA-256 on the board")
    image = " (the base image is written)" if report and report.image else ""
    return (f"interrupted before any of the app was written: the board on {port} keeps the app it had{image}",
            f"{again} to flash it")


@click.command("flash")
@click.option("--port", "-p", required=True, help="Serial port of the board: /dev/ttyUSB0, or sim:NAME for a virtual board.")
@click.option("--board", "-b", "board", required=True, help="Board file name (fleet boards list).")
@click.option("--firmware", type=click.Path(dir_okay=False, exists=True),
              help="MicroPython base image (.bin) to write first with esptool; its chip is checked first.")
@click.option("--via", type=click.Choice(["image", "repl"]), default="image", show_default=True,
              help="image: the board in download mode, one esptool pass (base image and filesystem image); "
                   "repl: files over a running MicroPython's REPL (the base image is not touched).")
@click.option("--retries", default=3, show_default=True, help="Reconnect and go on this many times when the line drops.")
@click.option("--no-stub", is_flag=True,
              help="With the image route: talk to the chip's ROM loader only, as esptool --no-stub (slower: 1 KiB "
                   "blocks, the region erased first), e.g. for a chip whose stub will not start.")
@click.option("--enroll", "do_enroll", is_flag=True,
              help="Also enroll the board: its DevEUI from the chip's MAC, its keys in the filesystem image, recorded "
                   "in the registry only once the board's files were read back (needs --kind and --site).")
@click.option("--kind", type=click.Choice(["waste", "env"]), help="With --enroll: the board's kind.")
@click.option("--site", help='With --enroll: where the board goes, e.g. "Park Allé 1".')
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@registry_options
def command(port, board, firmware, via, retries, no_stub, do_enroll, kind, site, as_json, ctx_reg):
    """Flash a board: base image (with --firmware), app and /board.json, verified, then a self-test.

    By default the board must be in download mode (hold BOOT, press and release RESET, release BOOT; a
    virtual board: fleet sim bootloader NAME): one esptool session writes the base image (when given) and
    the board's whole filesystem, built here, compressed and checked by MD5; the board is reset and its
    REPL reports every file's SHA-256. With --via repl the board runs MicroPython and only files that
    differ are sent over its REPL, each checked and replaced atomically.

    \b
    Example:
      fleet flash --port /dev/ttyUSB0 --board heltec_v3 --firmware ESP32_GENERIC_S3-v1.25.0.bin
      fleet sim start --name bench1 && fleet sim bootloader bench1 && fleet flash --port sim:bench1 --board virtual
      fleet flash --port sim:bench1 --board virtual --via repl
      fleet flash --port /dev/ttyUSB0 --board heltec_v3 --enroll -k 751 --kind waste --site "Park Allé 1"
    """
    import contextlib

    from provisioning.flash import flash

    from .ports import port_ref, rom_options, virtual_board

    bars = progress_bars(not as_json)
    tasks = {}

    def progress(stage, done, total):
        if bars is None:
            return
        if stage not in tasks:
            tasks[stage] = bars.add_task(f"{board} {stage}", total=total, step=stage in STEP_STAGES)
        bars.update(tasks[stage], completed=done, total=total)

    enroll_files, reg = None, None
    if do_enroll:
        if via != "image":
            raise UsageError("--enroll puts the keys in the filesystem image: it needs the image route",
                             hint="leave out --via repl, or enroll afterwards with 'fleet enroll --port'")
        if not (kind and site):
            raise UsageError("--enroll needs --kind and --site", hint='e.g. --kind waste --site "Park Allé 1"')
        from provisioning.enroll_on_board import image_enrollment

        from ..registry import NewDevice

        reg, op, kfilter = ctx_reg()
        enroll_files = image_enrollment(reg, op, NewDevice(kommune=kfilter or op.kommune or "", site=site,
                                                           kind=kind, board=board))
    ref = port_ref(port)
    try:
        if bars:
            bars.start()
        try:
            rom = {**rom_options(virtual_board(port)), "stub": not no_stub} if via == "image" else {}
            if enroll_files is not None:
                rom["enroll_files"] = enroll_files
            with reg if reg is not None else contextlib.nullcontext():
                rep = flash(ref, board, firmware=firmware, progress=progress, retries=retries, via=via,
                            **rom).as_dict()
        finally:
            if bars:
                bars.stop()
    except KeyboardInterrupt as e:
        report = getattr(e, "flash_report", None)
        message, hint = interrupted_state(report, port)
        raise Interrupted(message, hint=hint) from None
    except SelfTestFailed as e:
        if as_json:
            echo_json(e.report.as_dict())
        else:
            show_report(e.report.as_dict())
        raise
    if as_json:
        echo_json(rep)
    else:
        show_report(rep)
