"""`fleet station`: flash (and enroll) every board plugged in, in parallel."""

import sys

import click

from ..errors import FleetError, Interrupted, UsageError
from .common import echo_json
from .devices import print_table, registry_options


def virtual_targets():
    """Every running virtual board, as a station Target whose port follows the board."""
    from provisioning.station import Target

    from ..sim import manager
    from .ports import rom_options, virtual_port

    found = []
    for b in manager.running():
        try:
            info = b.info
        except FleetError:
            continue
        found.append(Target(b.name, virtual_port(b), "virtual board", info.get("board"), rom=rom_options(b)))
    return found


@click.command("station")
@click.option("--board", "-b", help="Board file for every USB board (virtual boards default to their own).")
@click.option("--firmware", type=click.Path(dir_okay=False, exists=True),
              help="MicroPython base image for the USB boards (checked against --board's chip first).")
@click.option("--no-usb", is_flag=True, help="Leave USB serial ports alone (virtual boards only).")
@click.option("--no-virtual", is_flag=True, help="Leave running virtual boards alone (USB boards only).")
@click.option("--enroll", "do_enroll", is_flag=True, help="Also enroll each board (needs --kommune, --kind, --site).")
@click.option("--kind", type=click.Choice(["waste", "env"]), help="With --enroll: the boards' kind.")
@click.option("--site", help='With --enroll: where the boards go, e.g. "Lager, palle 17".')
@click.option("--via", type=click.Choice(["image", "repl"]), default="image", show_default=True,
              help="image: boards in download mode, one esptool pass each; repl: over a running MicroPython.")
@click.option("--json", "as_json", is_flag=True, help="Print one result per port as JSON.")
@registry_options
def command(board, firmware, no_usb, no_virtual, do_enroll, kind, site, via, as_json, ctx_reg):
    """Find every board on a known USB-UART (CP210x, CH340/CH9102, FTDI, ESP32 USB) and every running
    virtual board, flash them in parallel with a progress bar each, and end with a table: port, DevEUI,
    result. The exit code is 0 only when every board passed. By default each board is in download mode
    and gets one esptool pass (fleet flash --help).

    \b
    Example:
      fleet sim start --count 3 && for b in vb1 vb2 vb3; do fleet sim bootloader $b; done
      fleet station --no-usb
      fleet station --board ttgo_lora32_v21 --firmware BYSANS_TTGO_LORA32.bin --enroll -k 751 --kind waste --site Lager
    """
    from provisioning.station import provision_all, usb_targets

    from .flash import STEP_STAGES, progress_bars

    targets = (usb_targets() if not no_usb else []) + (virtual_targets() if not no_virtual else [])
    if not targets:
        raise UsageError("no boards found: no known USB-UART and no running virtual board",
                         hint="plug the boards in (or 'fleet sim start --count 3'), then run it again")
    enroll = enroll_files = None
    reg = None
    if do_enroll:
        if not (kind and site):
            raise UsageError("--enroll needs --kind and --site", hint='e.g. --kind waste --site "Lager, palle 17"')
        import threading

        from provisioning.enroll_on_board import enroll_on_board

        from ..registry import NewDevice

        reg, op, kfilter = ctx_reg()
        lock = threading.Lock()

        def enroll(port, board_name, ident):
            new = NewDevice(kommune=kfilter or op.kommune or "", site=site, kind=kind, board=board_name)
            with lock:  # one registry session; the serial writes are short
                record, _, _ = enroll_on_board(reg, op, new, port, ident=ident)
            return record, None

        from provisioning.enroll_on_board import image_enrollment

        # the image route: keys in each board's filesystem image, recorded once its files were read back
        enroll_files = image_enrollment(reg, op, NewDevice(kommune=kfilter or op.kommune or "", site=site,
                                                           kind=kind, board=""), lock=lock)

    bars = progress_bars(not as_json)
    tasks = {}

    def progress(key, stage, done, total):
        if bars is None:
            return
        if key not in tasks:
            tasks[key] = bars.add_task(key, total=total)
        bars.update(tasks[key], completed=done, total=total, description=f"{key} {stage}",
                    step=stage in STEP_STAGES)

    if bars:
        bars.start()
    try:
        results = _run(reg, via, targets, board, firmware, progress, enroll, enroll_files)
    except KeyboardInterrupt as e:
        if bars:
            bars.stop()
            bars = None
        message, hint = interrupted_message(getattr(e, "station_state", None))
        raise Interrupted(message, hint=hint) from None
    finally:
        if bars:
            bars.stop()
    if as_json:
        echo_json([r.as_dict() for r in results])
    else:
        print_table([[r.key if r.key == r.port else f"{r.port} ({r.key})", r.dev_eui or "-", r.board or "-",
                      r.message] for r in results], ("port", "DevEUI", "board", "result"))
    bad = [r for r in results if not r.ok]
    if bad:
        click.echo(f"{len(bad)} of {len(results)} board{'s' if len(results) != 1 else ''} failed", err=True)
        codes = {r.exit_code for r in bad}
        e = FleetError(f"{len(bad)} of {len(results)} boards failed; the table shows why",
                       hint="fix those boards (by image: put them in download mode) and run 'fleet station' "
                            "again: boards done in an earlier pass that run this release are left alone")
        e.exit_code = codes.pop() if len(codes) == 1 else 59
        raise e
    click.echo(f"{len(results)} board{'s' if len(results) != 1 else ''} ok", err=True)
    sys.stdout.flush()


def _run(reg, via, targets, board, firmware, progress, enroll, enroll_files):
    from provisioning.station import provision_all

    if reg is None:
        return provision_all(targets, board=board, firmware=firmware, progress=progress, via=via)
    with reg:
        if via == "image":
            return provision_all(targets, board=board, firmware=firmware, enroll_files=enroll_files,
                                 progress=progress)
        return provision_all(targets, board=board, firmware=firmware, enroll=enroll, progress=progress, via=via)


def interrupted_message(state: dict | None) -> tuple[str, str]:
    """(message, hint) for a station stopped by Ctrl-C: which boards were done, which were not begun."""
    again = ("run 'fleet station' again: boards that already run this release are left alone, the others "
             "are flashed (by image: put them in download mode first)")
    if not state:
        return "interrupted before any board was begun", again
    done, left = state["done"], state["not_started"]
    parts = []
    ok = [r.key for r in done if r.ok]
    bad = [f"{r.key} ({r.message})" for r in done if not r.ok]
    if ok:
        parts.append(f"done: {', '.join(ok)}")
    if bad:
        parts.append(f"failed: {'; '.join(bad)}")
    if left:
        parts.append(f"not begun: {', '.join(left)}")
    return ("interrupted; the boards on their way finished their pass (none was cut off in the middle of a "
            "write). " + ". ".join(parts), again)
