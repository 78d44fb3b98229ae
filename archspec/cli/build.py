"""`archspec build`: compile a spec, print its summary, optionally save the module."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from ..errors import SpecError
from ..files import atomic_output, same_file
from . import SET, fail, main, parse_sets


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@SET
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Save the module: .pt (torch.save of the module) or .pt2 (torch.export program).")
@click.option("--device", default="cpu", show_default=True, help="Device to build on: cpu, cuda, cuda:1, mps.")
def build(spec: str, sets: tuple[str, ...], output: str | None, device: str) -> None:
    """Compile SPEC into a torch.fx GraphModule and print a summary."""
    from .. import pipeline
    from ..report import overview_lines

    overrides = parse_sets(sets)
    if output:
        _check_output(spec, output)
    try:
        t0 = time.perf_counter()
        typed = pipeline.compile(spec, **overrides)
        t1 = time.perf_counter()
        from ..backends.torch_fx import DeviceError, build_module

        t_import = time.perf_counter()
        try:
            module = build_module(typed, device=device)
        except DeviceError as exc:
            click.echo(f"error[device-unavailable]: {exc}", err=True)
            sys.exit(1)
        t2 = time.perf_counter()
    except SpecError as exc:
        fail(exc)
        return
    from ..expect import check_expect

    problems = check_expect(typed)
    click.echo(f"{typed.net.name}  ({spec})")
    for label, text in overview_lines(typed):
        click.echo(f"  {label:<9}{text}")
    click.echo(f"  {'built':<9}on {device} in {(t2 - t_import) * 1000:.0f} ms after checks in "
               f"{(t1 - t0) * 1000:.0f} ms (and {t_import - t1:.1f} s to import torch)")
    if output:
        _save(module, typed, output, device)
        click.echo(f"  {'saved':<9}{output}")
    if problems:
        click.echo("\n" + SpecError(problems, typed.net.sources).render(), err=True)
        sys.exit(1)


def _check_output(spec: str, output: str) -> None:
    suffix = Path(output).suffix
    if suffix not in (".pt", ".pt2"):
        raise click.BadParameter(f"unknown format {suffix or '(none)'}; use .pt or .pt2", param_hint="-o")
    if same_file(output, spec):
        raise click.BadParameter("refusing to overwrite the spec file itself", param_hint="-o")


def _save(module: Any, typed: Any, output: str, device: str) -> None:
    """Write to a temporary file next to OUTPUT, then move it into place: never a half-written file."""
    import torch

    with atomic_output(output) as tmp:
        if Path(output).suffix == ".pt2":
            example = torch.zeros((2,) + tuple(typed.input_shape), device=device)
            torch.export.save(torch.export.export(module.eval(), (example,)), tmp)
        else:
            torch.save(module, tmp)


