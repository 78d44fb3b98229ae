"""Printing a `table.Table` from the CLI: a terminal table (rich), JSON, CSV or Markdown."""

from __future__ import annotations

import io
import json
import shutil
import sys
from typing import Any

import click

FORMATS = ("json", "csv", "markdown")


def format_options(fn: Any) -> Any:
    """--json / --csv / --markdown, at most one of them."""
    for name, text in reversed(list(zip(FORMATS, ("JSON", "CSV", "Markdown"), strict=True))):
        fn = click.option(f"--{name}", name, is_flag=True, help=f"Print {text} instead of a terminal table.")(fn)
    return fn


def chosen_format(**flags: bool) -> str:
    picked = [f for f in FORMATS if flags.get(f)]
    if len(picked) > 1:
        raise click.UsageError(f"choose one output format, not {' and '.join('--' + p for p in picked)}")
    return picked[0] if picked else "terminal"


def emit(table: Any, fmt: str) -> None:
    """Print a `table.Table` as a terminal table (rich), JSON, CSV or Markdown."""
    if fmt == "json":
        click.echo(json.dumps(table.to_json(), indent=2, ensure_ascii=False))
    elif fmt == "csv":
        click.echo(table.to_csv(), nl=False)
    elif fmt == "markdown":
        click.echo(table.to_markdown(), nl=False)
    else:
        print_rich(table)


def print_rich(table: Any) -> None:
    """The table with rich; block rows bold, training-only rows dim, notes below."""
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    tty = sys.stdout.isatty()
    buf = io.StringIO()
    width = shutil.get_terminal_size().columns if tty else 10_000  # piped: natural width, never truncated
    console = Console(file=buf, width=width, force_terminal=tty, highlight=False)
    rt = RichTable(title=Text(table.title), box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for c in table.columns:
        rt.add_column(c.title, justify="right" if c.numeric else "left", no_wrap=c.numeric, overflow="fold")
    last = len(table.rows) - 1
    for i, r in enumerate(table.rows):
        rt.add_row(*map(Text, _indent(table, r)), style=_style(r), end_section=i == last and bool(table.total_rows))
    for r in table.total_rows:
        rt.add_row(*map(Text, table.cells(r)), style="bold")
    console.print(rt)
    for note in table.notes:
        console.print(Text(f"  {note}"), soft_wrap=True)
    click.echo("\n".join(line.rstrip() for line in buf.getvalue().splitlines()))


def _indent(table: Any, row: dict[str, Any]) -> list[str]:
    cells = table.cells(row)
    if table.indent_key and row.get(table.indent_key):
        cells[0] = "  " * (row[table.indent_key] - 1) + cells[0]
    return cells


def _style(row: dict[str, Any]) -> str:
    if row.get("train_only"):
        return "dim"
    return "bold" if row.get("kind") not in (None, "op") else ""
