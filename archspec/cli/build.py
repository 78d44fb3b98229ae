"""`archspec build`: compile a spec, print its summary, optionally load weights and save the module."""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any

import click

from ..errors import SpecError
from ..export import FORMATS, format_of, formats_help
from ..files import same_path
from ..memory import parse_size
from . import PASSES, SET, device_unavailable, fail, main, parse_sets
from .lowp import calibration_batches, check_request, lowp_failed, lowp_options
from .outputs import check_output


class Size(click.ParamType):
    """A byte count written with a unit: 512MB, 2GiB, 1.5GB (or plain bytes)."""

    name = "SIZE"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        try:
            return parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


_OUTPUT_HELP = "Save the module; the suffix picks the format: " + "; ".join(
    f"{f.suffix} {f.what}" for f in FORMATS.values()) + ". Repeat -o to write several files of one build " \
    "(e.g. -o model.onnx -o weights.safetensors: the same weights)."


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@SET
@click.option("-o", "--output", "outputs", multiple=True, type=click.Path(dir_okay=False), help=_OUTPUT_HELP)
@click.option("--weights", type=click.Path(), metavar="FILE",
              help="Load weights, strictly: a .safetensors file or a state_dict saved with torch.save "
                   "(read with weights_only=True).")
@click.option("--device", default="cpu", show_default=True, help="Device to build on: cpu, cuda, cuda:1, mps, meta.")
@click.option("--optimize", is_flag=True,
              help="Return and save the inference module archspec.optimize makes (BN folded, convs fused; "
                   "docs/optimize.md), with the default passes for --device.")
@PASSES
@lowp_options("Optimise for this dtype (implies --optimize): bf16 and fp16 cast weights and activations, int8 "
              "quantises from calibration data (CPU only; --calibrate N or --calibrate-data FILE).")
@click.option("--max-memory", type=Size(), default=None,
              help="Refuse to build when the weights need more than SIZE (e.g. 512MB, 2GiB); by default, more than "
                   "the device has available. --device meta allocates nothing and is never refused.")
@click.option("--seed", type=int, default=None, metavar="N",
              help="Seed torch's random generators before the weights are made: the same N, the same weights.")
def build(spec: str, sets: tuple[str, ...], outputs: tuple[str, ...], weights: str | None, device: str,
          optimize: bool, passes: list[str] | None, dtype: str, calibrate: int | None, calibrate_data: str | None,
          max_memory: int | None, seed: int | None) -> None:
    """Compile SPEC into a torch.fx GraphModule and print a summary."""
    from .. import pipeline
    from ..report import overview_lines

    overrides = parse_sets(sets)
    chosen: bool | list[str] = passes if passes is not None else optimize or dtype != "fp32"
    check_request(dtype, device, calibrate, calibrate_data)
    for i, output in enumerate(outputs):
        _check_output(spec, output, device, optimized=chosen is not False)
        twice = next((other for other in outputs[:i] if same_path(other, output)), None)
        if twice is not None:
            raise click.BadParameter(f"{output} is given twice (as {twice}); each -o writes one file",
                                     param_hint="-o")
    try:
        t0 = time.perf_counter()
        typed = pipeline.compile(spec, **overrides)
        t1 = time.perf_counter()
        from ..backends.torch_fx import DeviceError

        t_import = time.perf_counter()
        from ..passes.lowp import LowPrecisionError
        from ..weights import WeightsConverted

        batches = calibration_batches(tuple(typed.input_shape), calibrate, calibrate_data, seed)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", WeightsConverted)
                module: Any = pipeline.build(typed, device=device, weights=weights, optimize=chosen, seed=seed,
                                             max_memory=max_memory if max_memory is not None else "auto",
                                             dtype=dtype, calibrate=batches)
        except DeviceError as exc:
            device_unavailable(exc)
        except LowPrecisionError as exc:
            lowp_failed(exc)
        for warning in caught:
            if not issubclass(warning.category, WeightsConverted):
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
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
    if weights:
        click.echo(f"  {'weights':<9}{weights}")
        for warning in caught:
            if issubclass(warning.category, WeightsConverted):
                click.echo(f"  {'':<9}{str(warning.message).removeprefix(weights + ': ')}")
    if chosen is not False:
        done = " · ".join(f"{name} {count}" for name, count in module.passes.items())
        click.echo(f"  {'passes':<9}{done}  (rewrites made by each)")
    if problems:  # a network that fails its own `expect:` is not saved: the files there stay as they were
        if outputs:
            click.echo(f"  {'saved':<9}nothing: the spec's expect: fails ({', '.join(outputs)} left as "
                       f"{'they were' if len(outputs) > 1 else 'it was'})")
        click.echo("\n" + SpecError(problems, typed.net.sources).render(), err=True)
        sys.exit(1)
    for output in outputs:
        _save(module, typed, output)
        click.echo(f"  {'saved':<9}{output}")


def _check_output(spec: str, output: str, device: str, optimized: bool) -> None:
    fmt = format_of(output)
    if fmt is None:
        suffix = output.rpartition(".")[2] if "." in output.rsplit("/", 1)[-1] else ""
        raise click.BadParameter(f"unknown format {'.' + suffix if suffix else '(no suffix)'}; use {formats_help()}",
                                 param_hint="-o")
    if optimized and not fmt.takes_optimized:
        usable = ", ".join(f.suffix for f in FORMATS.values() if f.takes_optimized)
        raise click.BadParameter(f"an optimised module is saved as {usable}; {fmt.suffix} takes the module as the "
                                 "spec builds it (leave out --optimize)", param_hint="-o")
    if fmt.needs_weights and device.startswith("meta"):
        raise click.BadParameter(f"a module built on meta has no weights to write to {fmt.suffix}",
                                 param_hint="-o")
    check_output(spec, output)


def _save(module: Any, typed: Any, output: str) -> None:
    """Write through a temporary file next to OUTPUT, moved into place: never a half-written file."""
    from ..export import ExportError, save

    try:
        save(module, typed, output)
    except SpecError as exc:  # a node the format cannot express (an op without a Python-source form)
        fail(exc)
    except ExportError as exc:
        click.echo(f"error[export-failed]: {output}: {exc}", err=True)
        sys.exit(1)
