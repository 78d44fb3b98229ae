"""`archspec diff`: compare two specs, or one spec under two sets of overrides, block by block."""

from __future__ import annotations

import sys

import click

from ..errors import SpecError
from . import SET, fail, main, parse_sets
from .tables import chosen_format, emit, format_options


@main.command()
@click.argument("spec_a", metavar="A", type=click.Path(dir_okay=False))
@click.argument("spec_b", metavar="[B]", required=False, type=click.Path(dir_okay=False))
@SET
@click.option("--set-a", "sets_a", multiple=True, metavar="KEY=VALUE", help="Override a variable of A only.")
@click.option("--set-b", "sets_b", multiple=True, metavar="KEY=VALUE", help="Override a variable of B only.")
@click.option("--all", "show_all", is_flag=True, help="Show unchanged rows too (and those the same graph).")
@click.option("--exit-code", "exit_code", is_flag=True,
              help="Exit 1 when the graphs differ (ops, attributes, edges, weight names), 0 when they are equal.")
@format_options
def diff(spec_a: str, spec_b: str | None, sets: tuple[str, ...], sets_a: tuple[str, ...],
         sets_b: tuple[str, ...], show_all: bool, exit_code: bool, **flags: bool) -> None:
    """Per-block changes from A to B: widths, output shapes, params, MACs, totals.

    B defaults to A, so one spec under two settings is `archspec diff SPEC --set-b k5=5`.
    `--set` applies to both sides, `--set-a` and `--set-b` to one. The notes say whether the two are one
    graph, however written (`graph: equal`); rows that are the same graph written differently are hidden.
    """
    from .. import pipeline
    from ..diff import diff_table

    fmt = chosen_format(**flags)
    if spec_b is None and not sets_a and not sets_b:
        raise click.UsageError("nothing to compare: give a second spec B, or --set-a/--set-b")
    both = parse_sets(sets)
    over_a = {**both, **parse_sets(sets_a)}
    over_b = {**both, **parse_sets(sets_b)}
    try:
        a = pipeline.compile(spec_a, **over_a)
        b = pipeline.compile(spec_b or spec_a, **over_b)
    except SpecError as exc:
        fail(exc)
        return
    table = diff_table(a, b, show_all=show_all)
    emit(table, fmt)
    if exit_code and not table.meta["graph"]["equal"]:
        sys.exit(1)
