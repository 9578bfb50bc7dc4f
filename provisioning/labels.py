"""QR labels for enrolled devices: a PNG (the QR code) and an SVG (the QR code with the text beside it).

The QR code holds text, never a key:

    BYSANS DEVICE
    DevEUI: 240AC4FFFE123456
    Kommune: 0751 Aarhus
    Site: Park Allé 1, bin 3

so any phone's camera shows who the device is, and a technician's scan finds it in `fleet devices show`.
"""

import io
from pathlib import Path
from xml.sax.saxutils import escape

import segno

from fleet.registry import DeviceRecord


def label_text(rec: DeviceRecord) -> str:
    return (f"BYSANS DEVICE\nDevEUI: {rec.dev_eui}\nKommune: {rec.kommune_kode} {rec.kommune_navn}\n"
            f"Site: {rec.site}")


def make_qr(rec: DeviceRecord) -> segno.QRCode:
    return segno.make(label_text(rec), error="m", micro=False)


def label_svg(rec: DeviceRecord, *, scale: int = 4) -> str:
    """An SVG label: the QR code on the left, DevEUI, kommune and site on the right."""
    qr = make_qr(rec)
    buf = io.BytesIO()
    qr.save(buf, kind="svg", scale=scale, border=2, xmldecl=False, svgns=False, nl=False)
    inner = buf.getvalue().decode()
    w, h = qr.symbol_size(scale=scale, border=2)
    eui = " ".join(rec.dev_eui[i:i + 4] for i in range(0, 16, 4))
    lines = [("DevEUI", eui, 16), ("Kommune", f"{rec.kommune_kode} {rec.kommune_navn}", 14),
             ("Site", rec.site, 12), ("", f"{rec.kind} · {rec.board} · {rec.name}", 10)]
    text, y = [], 24
    for label, value, size in lines:
        shown = f"{label}: {value}" if label else value
        text.append(f'<text x="{w + 8}" y="{y}" font-family="monospace" font-size="{size}">{escape(shown)}</text>')
        y += size + 10
    width = w + 8 + 8 * max(len(f"{a}: {b}") for a, b, _ in lines)
    height = max(h, y)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}"><rect width="100%" height="100%" fill="#fff"/>'
            f'<g>{inner}</g>{"".join(text)}</svg>\n')


def write_label(rec: DeviceRecord, out_dir, *, scale: int = 4) -> tuple[Path, Path]:
    """Writes `<DevEUI>.png` and `<DevEUI>.svg` into out_dir; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{rec.dev_eui}.png", out / f"{rec.dev_eui}.svg"
    make_qr(rec).save(str(png), kind="png", scale=scale * 2, border=2)
    svg.write_text(label_svg(rec, scale=scale), encoding="utf-8")
    return png, svg
