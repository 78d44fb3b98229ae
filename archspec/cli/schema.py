"""`archspec schema`: print the JSON Schema of the spec language, for editors."""

from __future__ import annotations

import json

import click

from . import main


@main.command()
def schema() -> None:
    """Print the JSON Schema (draft-07) of spec files: archspec schema > archspec.schema.json."""
    from ..schema import spec_schema

    click.echo(json.dumps(spec_schema(), indent=2, ensure_ascii=False))
