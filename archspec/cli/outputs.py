"""Checks every verb that writes `-o FILE` makes before it computes anything."""

from __future__ import annotations

import sys

import click

from ..files import missing_folder, same_file


def check_output(spec: str, output: str) -> None:
    """Refuse an output that is the spec itself (usage error, exit 2) or in a folder that does not exist (io-error).

    Outputs never create folders: a typo in the folder would otherwise scatter files.
    """
    if same_file(output, spec):
        raise click.BadParameter(f"refusing to overwrite the spec file itself ({output})", param_hint="-o")
    problem = missing_folder(output)
    if problem is not None:
        click.echo(f"error[io-error]: cannot write {output}: {problem.strerror}: {problem.filename}", err=True)
        sys.exit(1)
