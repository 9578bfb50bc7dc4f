"""Tables for people and for pipes.

On a terminal a table that fits the screen is drawn with rich, identifiers never cut (their columns do not
wrap or shrink); a longer one streams through the pager ($PAGER, else `less`) as aligned columns, widths
taken from its first 1,000 rows, so the first screen shows at once however many rows follow. Piped
(`fleet devices list | grep ...`), the same rows stream as plain tab-separated lines under one header
line, whole, one row per line, so that `cut`, `sort` and spreadsheets read them.
"""

import itertools
import sys
from collections.abc import Iterable, Sequence

import click

# Columns whose values are identifiers: shown whole, never folded or cut.
ID_COLUMNS = frozenset({"dev_eui", "device", "deveui", "id", "port", "kommune", "release"})


def is_terminal() -> bool:
    return sys.stdout.isatty()


def print_table(rows: Iterable[Sequence], headers: Sequence[str], *, title: str | None = None,
                markup: bool = False) -> int:
    """Prints rows under headers; returns how many rows were printed. `markup`: cells carry rich markup
    (kept on a terminal, stripped when piped)."""
    if not is_terminal():
        return _plain(rows, headers, markup, title)
    import shutil

    screen = shutil.get_terminal_size().lines
    rows = iter(rows)
    head = [[str(c) for c in r] for r in itertools.islice(rows, max(screen - 6, 1))]
    more = next(rows, None)
    if more is None:  # it fits the screen: a drawn table
        return _rich(head, headers, title, markup)
    # longer than the screen: aligned columns streamed through the pager as they come (a drawn table of
    # 100,000 rows would be laid out whole before the first line shows)
    head.append([str(c) for c in more])
    head.extend([str(c) for c in r] for r in itertools.islice(rows, _WIDTH_ROWS - len(head)))
    counted = [0]

    def lines():
        plain = _markup_stripper() if markup else str
        cells = itertools.chain(head, ([str(c) for c in r] for r in rows))
        first = [[plain(c).replace("\t", " ").replace("\n", " ") for c in r] for r in head]
        widths = [max([len(h)] + [len(r[i]) for r in first]) for i, h in enumerate(headers)]
        widths = [w if h in ID_COLUMNS else min(w, _MAX_WIDTH) for w, h in zip(widths, headers)]
        # click ends the text with a newline: each chunk starts a line, none ends one
        yield (title + "\n" if title else "") + _aligned(headers, widths, headers)
        chunk = []
        for r in cells:
            counted[0] += 1
            chunk.append(_aligned([plain(c).replace("\t", " ").replace("\n", " ") for c in r], widths, headers))
            if len(chunk) == (_CHUNK if counted[0] > len(head) else len(head)):  # the first screen at once
                yield "\n" + "\n".join(chunk)
                chunk.clear()
        if chunk:
            yield "\n" + "\n".join(chunk)

    click.echo_via_pager(lines())
    return counted[0]


_WIDTH_ROWS = 1000  # rows the pager's column widths are taken from
_MAX_WIDTH = 40  # a longer free-text cell is cut (with …) on a terminal; identifiers never are


def _aligned(cells, widths, headers) -> str:
    out = []
    for c, w, h in zip(cells, widths, headers):
        if len(c) > w and h not in ID_COLUMNS:
            c = c[:w - 1] + "…"
        out.append(c.ljust(w))
    return "  ".join(out).rstrip()


def _rich(rows, headers, title, markup) -> int:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, header_style="bold", title_justify="left")
    for i, h in enumerate(headers):
        if h in ID_COLUMNS:
            width = max([len(h)] + [len(r[i]) for r in rows])
            t.add_column(h, no_wrap=True, min_width=width)
        else:
            t.add_column(h, overflow="fold")
    for r in rows:
        t.add_row(*r) if markup else t.add_row(*(escape(c) for c in r))
    Console().print(t)
    return len(rows)


def _plain(rows, headers, markup, title) -> int:
    plain = _markup_stripper() if markup else str
    out = sys.stdout
    n = 0
    if title:
        out.write(f"# {title}\n")
    if headers:
        out.write("\t".join(headers) + "\n")
    lines = []
    for r in rows:
        lines.append("\t".join(plain(c).replace("\t", " ").replace("\n", " ") for c in r))
        n += 1
        if len(lines) == _CHUNK:  # whole lines, a chunk at a time: a pipe reader sees rows as they come
            out.write("\n".join(lines) + "\n")
            lines.clear()
    if lines:
        out.write("\n".join(lines) + "\n")
    out.flush()
    return n


_CHUNK = 512  # rows per write when piped


def _markup_stripper():
    from rich.text import Text

    return lambda c: Text.from_markup(str(c)).plain


def escape(s: str) -> str:
    """s with rich markup characters escaped, for a cell of a markup=True table."""
    from rich.markup import escape

    return escape(s)
