"""The `archspec` command: a thin shell over the Python API.

    archspec build   SPEC [--set k=v ...] [-o FILE] [--device DEV]
    archspec check   [PATH ...] [--set k=v ...] [--json] [--min-input] [--deep]
    archspec draw    SPEC -o FILE [--depth N] [--focus BLOCK] [--no-heads] [--lr]
    archspec summary SPEC [--depth N] [--paper] [--json | --csv | --markdown]
    archspec diff    A [B] [--set-a k=v] [--set-b k=v] [--all]
    archspec profile SPEC [--batch N] [--device DEV] [--optimize] [--depth N] [--json] [-o chart.png]

Exit codes: 0 success, 1 a spec has errors (or a failed `expect:`), 2 usage error.
Only `build` and `profile` import torch.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import yaml

from ..errors import SpecError


def parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="--set")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise click.BadParameter(f"cannot read the value of {item!r}", param_hint="--set") from None
    return out


SET = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                   help="Override a spec variable, or the input shape: --set num_classes=10 --set input=[3,299,299].")


def fail(exc: SpecError) -> None:
    click.echo(exc.render(), err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archspec")
def main() -> None:
    """archspec: compile YAML network specs into checked torch.fx modules."""


from . import build, check, diff, draw, profile, summary  # noqa: E402,F401  (each module registers its command)
