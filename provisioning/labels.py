"""QR labels for enrolled devices: a PNG and an SVG, each the QR code with the DevEUI, kommune and site
readable beside it (a label must be readable by a person whose phone is flat).

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
    # One fixed mask pattern: any of the eight is a valid code every reader reads, and choosing the "best"
    # by its penalty score is four fifths of segno's work (a pallet of 10,000 labels: minutes, not seconds).
    return segno.make(label_text(rec), error="m", micro=False, mask=2)


def _lines(rec: DeviceRecord) -> list[tuple[str, int]]:
    """What a person reads on the label, with a relative size: the DevEUI first, in groups of four."""
    eui = " ".join(rec.dev_eui[i:i + 4] for i in range(0, 16, 4))
    return [(f"DevEUI: {eui}", 16), (f"Kommune: {rec.kommune_kode} {rec.kommune_navn}", 14), (f"Site: {rec.site}", 12),
            (f"{rec.kind} · {rec.board} · {rec.name}", 10)]


def label_png(rec: DeviceRecord, qr: segno.QRCode | None = None, *, scale: int = 8) -> bytes:
    """A PNG label: the QR code on the left, the same text as the SVG's on the right."""
    from PIL import Image, ImageDraw, ImageFont

    qr = qr or make_qr(rec)
    border = 2
    rows = [bytes(255 for _ in range(len(qr.matrix) + 2 * border))] * border
    rows += [bytes([255] * border) + bytes(0 if v & 1 else 255 for v in row) + bytes([255] * border)
             for row in qr.matrix]
    rows += rows[:border]
    side = len(rows[0])
    code = Image.frombytes("L", (side, side), b"".join(rows)).resize((side * scale, side * scale), Image.NEAREST)
    lines = _lines(rec)
    fonts = [_font(size * scale // 4) for _, size in lines]
    draw = ImageDraw.Draw(code)
    width = max(draw.textlength(t, font=f) for (t, _), f in zip(lines, fonts))
    img = Image.new("L", (code.width + 4 * scale + int(width) + 2 * scale, code.height), 255)
    img.paste(code, (0, 0))
    draw, y = ImageDraw.Draw(img), 3 * scale
    for (text, size), font in zip(lines, fonts):
        draw.text((code.width + 2 * scale, y), text, fill=0, font=font)
        y += size * scale // 4 + 3 * scale
    buf = io.BytesIO()
    # black or white by a threshold: the code is black and white already, and dithering the text's grey edges
    # took a sixth of a label's time and made its letters no easier to read
    img.convert("1", dither=Image.Dither.NONE).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


_FONTS: dict = {}


def _font(px: int):
    """DejaVu Sans (Debian's fonts-dejavu-core: æ, ø, å and é), else Pillow's own font (ASCII: the DevEUI
    and kommune code stay readable)."""
    from PIL import ImageFont

    if px not in _FONTS:
        try:
            _FONTS[px] = ImageFont.truetype("DejaVuSans.ttf", px)
        except OSError:
            _FONTS[px] = ImageFont.load_default(size=px)
    return _FONTS[px]


def label_svg(rec: DeviceRecord, qr: segno.QRCode | None = None, *, scale: int = 4) -> str:
    """An SVG label: the QR code on the left, DevEUI, kommune and site on the right."""
    qr = qr or make_qr(rec)
    buf = io.BytesIO()
    qr.save(buf, kind="svg", scale=scale, border=2, xmldecl=False, svgns=False, nl=False)
    inner = buf.getvalue().decode()
    w, h = qr.symbol_size(scale=scale, border=2)
    lines = _lines(rec)
    text, y = [], 24
    for shown, size in lines:
        text.append(f'<text x="{w + 8}" y="{y}" font-family="monospace" font-size="{size}">{escape(shown)}</text>')
        y += size + 10
    width = w + 8 + 8 * max(len(t) for t, _ in lines)
    height = max(h, y)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}"><rect width="100%" height="100%" fill="#fff"/>'
            f'<g>{inner}</g>{"".join(text)}</svg>\n')


def write_label(rec: DeviceRecord, out_dir, *, scale: int = 4) -> tuple[Path, Path]:
    """Writes `<DevEUI>.png` and `<DevEUI>.svg` into out_dir; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{rec.dev_eui}.png", out / f"{rec.dev_eui}.svg"
    qr = make_qr(rec)
    png.write_bytes(label_png(rec, qr, scale=scale * 2))
    svg.write_text(label_svg(rec, qr, scale=scale), encoding="utf-8")
    return png, svg
