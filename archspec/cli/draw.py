"""`archspec draw`: graphviz diagrams of a spec."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import SpecError
from . import SET, fail, main, parse_sets
from .outputs import check_output


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output file: .svg, .png, .pdf or .dot (.dot needs no graphviz binary).")
@SET
@click.option("--depth", type=click.IntRange(min=0), default=None,
              help="Levels of blocks to open: 1 draws each top-level block as one box. Default: every op.")
@click.option("--focus", metavar="BLOCK", default=None, help="Draw only this block instance or head, e.g. inception3a.")
@click.option("--heads/--no-heads", default=True, show_default=True, help="Draw auxiliary heads.")
@click.option("--lr", is_flag=True, help="Lay out left to right instead of top to bottom.")
def draw(spec: str, output: str, sets: tuple[str, ...], depth: int | None, focus: str | None, heads: bool,
         lr: bool) -> None:
    """Draw SPEC as a graphviz diagram, one cluster per block instance."""
    from .. import pipeline
    from ..draw import FORMATS, DrawError, render

    if Path(output).suffix.lower() not in FORMATS:
        raise click.BadParameter(f"unknown format '{Path(output).suffix or output}'; "
                                 "write .svg, .png, .pdf or .dot", param_hint="-o")
    check_output(spec, output)

    try:
        typed = pipeline.compile(spec, **parse_sets(sets))
    except SpecError as exc:
        fail(exc)
        return
    try:
        render(typed, output, depth=depth, heads=heads, rankdir="LR" if lr else "TB", focus=focus)
    except DrawError as exc:
        click.echo(f"error[draw]: {exc}", err=True)
        sys.exit(1)
    click.echo(f"wrote {output}")
