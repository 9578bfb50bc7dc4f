"""Tables for people and for pipes.

On a terminal a table is drawn with rich, identifiers never cut (their columns do not wrap or shrink) and,
when it is longer than the screen, shown through the pager. Piped (`fleet devices list | grep ...`), the
same rows stream as plain tab-separated lines under one header line, whole, one row per line, so that
`cut`, `sort` and spreadsheets read them.
"""

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
    from rich.console import Console
    from rich.table import Table

    rows = [[str(c) for c in r] for r in rows]
    t = Table(title=title, header_style="bold", title_justify="left")
    for i, h in enumerate(headers):
        if h in ID_COLUMNS:
            width = max([len(h)] + [len(r[i]) for r in rows])
            t.add_column(h, no_wrap=True, min_width=width)
        else:
            t.add_column(h, overflow="fold")
    for r in rows:
        t.add_row(*r) if markup else t.add_row(*(escape(c) for c in r))
    con = Console()
    if len(rows) + 6 > con.height:
        with con.pager(styles=True):
            con.print(t)
    else:
        con.print(t)
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
