"""`archspec summary`: per-layer and paper-style tables of a spec, torch-free."""

from __future__ import annotations

import click

from ..errors import SpecError
from . import SET, fail, main, parse_sets
from .tables import chosen_format, emit, format_options


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@SET
@click.option("--depth", type=click.IntRange(min=1), default=None,
              help="Show scopes nested deeper than N collapsed into their block's row.")
@click.option("--paper", is_flag=True, help="One row per block instance with its widths, as papers print them.")
@format_options
def summary(spec: str, sets: tuple[str, ...], depth: int | None, paper: bool, **flags: bool) -> None:
    """Per-layer table of SPEC: output shapes, params and MACs, blocks rolled up, totals."""
    from .. import pipeline
    from ..summary import layer_table, paper_table

    fmt = chosen_format(**flags)
    if paper and depth is not None:
        raise click.UsageError("--depth applies to the per-layer table, not to --paper")
    try:
        typed = pipeline.compile(spec, **parse_sets(sets))
    except SpecError as exc:
        fail(exc)
        return
    emit(paper_table(typed) if paper else layer_table(typed, depth), fmt)
