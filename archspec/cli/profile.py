"""`archspec profile`: measured time per spec block, from a run of the built network on random tensors."""

from __future__ import annotations

import sys

import click

from ..errors import SpecError
from . import PASSES, SET, device_unavailable, fail, main, parse_sets
from .lowp import DTYPE_NAMES, check_request, lowp_failed
from .outputs import check_output
from .tables import chosen_format, emit, format_options


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@SET
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Images per forward.")
@click.option("--device", default="cpu", show_default=True, help="Device to run on: cpu, cuda, cuda:1, mps.")
@click.option("--dtype", type=click.Choice(DTYPE_NAMES), default="fp32", show_default=True,
              help="As built, bf16 and fp16 run under torch.autocast; with --optimize they are real casts of the "
                   "weights and activations, and int8 (--optimize only, CPU) is quantised from --calibrate random "
                   "batches.")
@click.option("--calibrate", type=click.IntRange(min=1), default=2, show_default=True, metavar="N",
              help="int8: calibrate on N random batches (timing does not depend on the data).")
@click.option("--cuda-graphs", is_flag=True, help="Time the plain forward as a replayed CUDA graph (CUDA only).")
@click.option("--optimize", is_flag=True,
              help="Profile the module archspec.optimize returns, with the default passes for --device.")
@PASSES
@click.option("--depth", type=click.IntRange(min=1), default=1, show_default=True,
              help="Show scopes nested deeper than N collapsed into their block's row.")
@click.option("--repeat", type=click.IntRange(min=1), default=10, show_default=True, help="Timed runs (medians).")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True, help="Untimed runs first.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Also draw a bar chart: .png, .svg or .pdf.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random weights and input.")
@format_options
def profile(spec: str, sets: tuple[str, ...], batch: int, device: str, dtype: str, calibrate: int,
            cuda_graphs: bool, optimize: bool, passes: list[str] | None, depth: int, repeat: int, warmup: int,
            output: str | None, seed: int, **flags: bool) -> None:
    """Run SPEC's network on random input and show where the time goes, block by block."""
    fmt = chosen_format(**flags)
    if output and not output.lower().endswith((".png", ".svg", ".pdf")):
        raise click.BadParameter("the chart is drawn as .png, .svg or .pdf", param_hint="-o")
    if output:
        check_output(spec, output)
    check_request(dtype, device, calibrate if dtype == "int8" else None, None)
    from ..backends.torch_fx import DeviceError
    from ..passes.lowp import LowPrecisionError
    from ..profile import ProfileError, draw_chart
    from ..profile import profile as run_profile

    try:
        table = run_profile(spec, vars=parse_sets(sets), batch=batch, device=device, dtype=dtype,
                            cuda_graphs=cuda_graphs, optimize=optimize, passes=passes, depth=depth,
                            repeat=repeat, warmup=warmup, seed=seed, calibrate=calibrate)
    except SpecError as exc:
        fail(exc)
        return
    except DeviceError as exc:
        device_unavailable(exc)
    except LowPrecisionError as exc:
        lowp_failed(exc)
    except ProfileError as exc:
        raise click.UsageError(str(exc)) from None
    emit(table, fmt)
    if output:
        try:
            draw_chart(table, output)
        except ProfileError as exc:
            click.echo(f"error[missing-extra]: {exc}", err=True)
            sys.exit(1)
        click.echo(f"wrote {output}", err=fmt != "terminal")
