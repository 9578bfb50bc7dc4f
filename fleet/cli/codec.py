"""`fleet codec`: the uplink payload format (decode frames, export network-server decoders)."""

import base64
import binascii
import json
from pathlib import Path

import click

from ..codec import decode
from ..codec.diag import decode_diag, diag_tables
from ..codec.javascript import TARGETS, render
from ..codec.update_report import decode_report, report_tables
from ..errors import UsageError
from .common import echo_json


@click.group("codec")
def command():
    """Decode uplink payloads and export the decoders network servers run.

    The format (docs/formats/payload.md) is declared once in firmware/bysans/payload_spec.py; the
    firmware encodes with it, and the host and the JavaScript decoders read it.

    \b
    Example:
      fleet codec decode 0120
      fleet codec export --target chirpstack -o bysans-codec.js
    """


@command.command("export")
@click.option("--target", required=True, type=click.Choice(TARGETS),
              help="chirpstack (v4 codec), tts (The Things Stack formatter) or os2iot (decode()).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to FILE instead of standard output.")
def export(target, output):
    """Write the JavaScript decoder a network server expects.

    \b
    Example:
      fleet codec export --target tts -o bysans.js   # paste into the application's uplink formatter
      fleet codec export --target os2iot > decoder.js
    """
    js = render(target)
    if output:
        output.write_text(js)
        click.echo(f"wrote {output} ({len(js)} bytes, target {target})", err=True)
    else:
        click.echo(js, nl=False)


@command.command("decode")
@click.argument("payload")
@click.option("--base64", "is_b64", is_flag=True, help="PAYLOAD is base64 (as in MQTT events) instead of hex.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default is a short summary).")
@click.option("--fport", type=click.IntRange(1, 223), default=None,
              help="The uplink's FPort: 221 is the diagnostics record (docs/formats/diagnostics.md), 222 the "
                   "update report (docs/formats/update-report.md).")
def decode_cmd(payload, is_b64, as_json, fport):
    """Decode one uplink payload (hex, or base64 with --base64).

    \b
    Example:
      fleet codec decode 0120 --json
      fleet codec decode --base64 ASA= --json
      fleet codec decode 0103000700021117a1b2c3d4 --fport 221
      fleet codec decode 01020000000007 --fport 222
    """
    try:
        data = base64.b64decode(payload, validate=True) if is_b64 else bytes.fromhex(payload)
    except (ValueError, binascii.Error) as e:
        raise UsageError(f"PAYLOAD is not valid {'base64' if is_b64 else 'hex'}: {e}",
                         hint="pass the FRMPayload as hex (e.g. 0120), or base64 with --base64") from e
    if fport is not None and fport == diag_tables()["fport"]:
        rec = decode_diag(data)
        if as_json:
            echo_json(rec)
        else:
            heap = f"{rec['heap_min']} B" if rec["heap_min"] is not None else "-"
            click.echo(f"diagnostics v{rec['diag']}: reset {rec['reset_cause']}, boots {rec['boots']}, watchdog "
                       f"resets {rec['watchdog_resets']}, lowest free heap {heap}, exception "
                       f"{rec['exception'] or '-'}")
        return
    if fport is not None and fport == report_tables()["fport"]:
        rec = decode_report(data)
        if as_json:
            echo_json(rec)
        else:
            click.echo(f"update report v{rec['update_report']}: {rec['event']}"
                       + (f" ({rec['reason']})" if rec["reason"] else "")
                       + f", release counter {rec['counter'] if rec['counter'] is not None else 'not known'}")
        return
    frame = decode(data)
    if as_json:
        echo_json(frame)
        return
    if not frame["readings"]:
        click.echo(f"v{frame['version']} {frame['kind']}: empty batch (heartbeat)")
        return
    click.echo(f"v{frame['version']} {frame['kind']}: {len(frame['readings'])} readings, "
               f"every {frame['interval_min']} min, newest {frame['age_min']} min before the uplink")
    for r in frame["readings"]:
        click.echo("  " + json.dumps(r, separators=(",", ":")))
