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
    from rich.text import Text

    n = 0
    if title:
        click.echo(f"# {title}")
    if headers:
        click.echo("\t".join(headers))
    for r in rows:
        cells = [Text.from_markup(str(c)).plain if markup else str(c) for c in r]
        click.echo("\t".join(c.replace("\t", " ").replace("\n", " ") for c in cells))
        n += 1
    return n


def escape(s: str) -> str:
    """s with rich markup characters escaped, for a cell of a markup=True table."""
    from rich.markup import escape

    return escape(s)
