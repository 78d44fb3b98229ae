"""`archspec draw`: graphviz diagrams of a spec."""

from __future__ import annotations

import sys

import click

from ..errors import SpecError
from . import SET, fail, main, parse_sets


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output file: .svg, .png, .pdf or .dot (.dot needs no graphviz binary).")
@SET
@click.option("--depth", type=int, default=None, help="Collapse blocks nested deeper than this into one box.")
@click.option("--heads/--no-heads", default=True, show_default=True, help="Draw auxiliary heads.")
@click.option("--lr", is_flag=True, help="Lay out left to right instead of top to bottom.")
def draw(spec: str, output: str, sets: tuple[str, ...], depth: int | None, heads: bool, lr: bool) -> None:
    """Draw SPEC as a graphviz diagram, one cluster per block instance."""
    from .. import pipeline
    from ..draw import DrawError, render

    try:
        typed = pipeline.compile(spec, **parse_sets(sets))
    except SpecError as exc:
        fail(exc)
        return
    try:
        render(typed, output, depth=depth, heads=heads, rankdir="LR" if lr else "TB")
    except DrawError as exc:
        click.echo(f"error[draw]: {exc}", err=True)
        sys.exit(1)
    click.echo(f"wrote {output}")


