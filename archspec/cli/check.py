"""`archspec check`: validate specs and their expect: blocks, torch-free."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from ..errors import SpecError
from . import SET, main, parse_sets
from .github import workflow_command

FORMATS = ("text", "json", "github")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@SET
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="text (default); json: one JSON document for all specs; github: GitHub Actions annotations "
                   "(::error file=...,line=...) that show each fault on the pull request's lines.")
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@click.option("--min-input", is_flag=True, help="Also compute the smallest input H×W each spec accepts.")
@click.option("--deep", is_flag=True, help="Also build each spec on the meta device and confirm every node's shape "
              "against torch, in eval and training mode (imports torch; no memory allocated).")
def check(paths: tuple[str, ...], sets: tuple[str, ...], fmt: str | None, as_json: bool, min_input: bool,
          deep: bool) -> None:
    """Validate every *.yaml spec under PATHS (default: specs/) and its expect: block."""
    from ..check import check_file, collect

    if as_json and fmt not in (None, "json"):
        raise click.UsageError(f"--json and --format {fmt} ask for two formats; choose one")
    fmt = "json" if as_json else fmt or "text"
    overrides = parse_sets(sets)
    files, missing = collect(list(paths) or ["specs"])
    if missing:
        raise click.BadParameter(f"no such file or folder: {', '.join(missing)}", param_hint="PATHS")
    if not files:
        raise click.BadParameter("no *.yaml specs found", param_hint="PATHS")
    t0 = time.perf_counter()
    results = [check_file(f, overrides, want_min_input=min_input) for f in files]
    if deep:
        _deep(results)
    elapsed = time.perf_counter() - t0
    failed = [r for r in results if not r.ok]
    if fmt == "json":
        click.echo(json.dumps({"ok": not failed, "seconds": round(elapsed, 4),
                               "specs": [r.to_json() for r in results]}, indent=2))
    else:
        for r in results:
            _print_check(r, min_input, annotate=fmt == "github")
        click.echo(f"{len(results) - len(failed)} of {len(results)} specs ok in {elapsed:.2f} s")
    sys.exit(1 if failed else 0)


def _print_check(r: Any, min_input: bool, annotate: bool = False) -> None:
    if r.ok and r.library_blocks is not None:
        click.echo(f"ok    {r.file}  library: {r.library_blocks} block{'s' if r.library_blocks != 1 else ''}")
    elif r.ok and r.typed is not None:
        t = r.typed
        extra = ""
        if min_input:
            m, mi = r.smallest_input, r.smallest_inference
            extra = f"  min input {m[0]}×{m[1]}" if m else "  no valid input"
            if m and mi and mi != m:
                extra += f" ({mi[0]}×{mi[1]} at inference)"
        spec = t.net.spec
        if spec.overrides and spec.expect is not None:
            extra += "  (expect: not checked under --set)"
        if r.deep_checked:
            extra += "  shapes confirmed by torch: " + ", ".join(f"{n} nodes in {mode}"
                                                                 for mode, n in r.deep_checked.items())
        click.echo(f"ok    {r.file}  {r.name}: {t.total('params'):,} params, "
                   f"{t.total('macs', inference=True):,} MACs{extra}")
    else:
        n = sum(1 for d in r.diagnostics if d.severity == "error")
        click.echo(f"FAIL  {r.file}  {n} error{'s' if n != 1 else ''}")
        if not annotate:
            click.echo(SpecError(r.diagnostics, r.sources).render() + "\n", err=True)
    if annotate:
        for d in r.diagnostics:
            click.echo(workflow_command(d, r.file))


def _deep(results: list[Any]) -> None:
    """Add the deep check's diagnostics to every result that passed the torch-free check."""
    from ..deep import deep_check

    for r in results:
        if r.ok and r.typed is not None:
            report = deep_check(r.typed)
            r.diagnostics += report.diagnostics
            r.deep_checked = report.checked
