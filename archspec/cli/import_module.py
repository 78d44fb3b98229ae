"""`archspec import`: a PyTorch model (a builder function or an nn.Module class) into spec text."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from . import main, parse_sets


def _input_shape(ctx: click.Context, param: click.Parameter, text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise click.BadParameter(f"expected positive sizes C,H,W, got {text!r}", param_hint="--input")
    return shape


def resolve(ref: str) -> Any:
    """The object `package.module:attr` names; a usage error (exit 2) when it does not exist."""
    mod_name, sep, attr = ref.partition(":")
    if not sep or not mod_name or not attr:
        raise click.BadParameter(f"expected package.module:callable, got {ref!r}", param_hint="REF")
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {mod_name!r}: {exc}", param_hint="REF") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise click.BadParameter(f"{mod_name!r} has no attribute {attr!r}", param_hint="REF")
        obj = getattr(obj, part)
    if not callable(obj):
        raise click.BadParameter(f"{ref} is not callable", param_hint="REF")
    return obj


@main.command("import")
@click.argument("ref", metavar="REF")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the spec to this file (written whole or not at all); stdout without it.")
@click.option("--arg", "args", multiple=True, metavar="KEY=VALUE",
              help="A keyword argument of REF, read as YAML: --arg weights=null --arg num_classes=10.")
@click.option("--input", "input_shape", default="3,224,224", show_default=True, callback=_input_shape,
              metavar="C,H,W", help="The input shape the module is traced with (batch left out).")
@click.option("--name", help="The spec's name (default: the module's class name in snake case).")
def import_(ref: str, output: str | None, args: tuple[str, ...], input_shape: tuple[int, ...],
            name: str | None) -> None:
    """A PyTorch model as a spec: REF is package.module:callable, a function returning an nn.Module or an
    nn.Module class (torchvision.models:googlenet). Nothing is downloaded: pass --arg weights=null where the
    builder would."""
    from ..files import atomic_output
    from ..importer import Refused, import_module

    kwargs = {k: v for k, v in parse_sets(tuple(args)).items()}
    builder = resolve(ref)
    try:
        module = builder(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the user's builder refusing its arguments is a usage error
        raise click.BadParameter(f"{ref}(**{kwargs}) failed: {type(exc).__name__}: {exc}", param_hint="--arg") from None
    if not hasattr(module, "named_modules"):
        raise click.BadParameter(f"{ref} returned {type(module).__name__}, not an nn.Module", param_hint="REF")
    try:
        text = import_module(module, input_shape, name=name or ref.rpartition(":")[2].split(".")[-1].lower())
    except Refused as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    if output is None:
        click.echo(text, nl=False)
        return
    with atomic_output(output) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    click.echo(f"wrote {output}", err=True)
