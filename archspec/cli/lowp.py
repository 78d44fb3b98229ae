"""`--dtype`, `--calibrate N` and `--calibrate-data FILE` of `archspec build` and `archspec profile`.

Torch-free at import (`--help` needs no torch); the checks that need no network run before the build.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

DTYPE_NAMES = ("fp32", "bf16", "fp16", "int8")
"""archspec.passes.lowp.DTYPES, written out so that `--help` needs no torch (a test keeps the two equal)."""

CALIBRATION_BATCH = 8
"""Images per calibration batch drawn when no data is given."""


def lowp_options(dtype_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The three options, applied to a command."""

    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option("--calibrate-data", type=click.Path(dir_okay=False, exists=True), metavar="FILE",
                         help="int8: calibrate on these inputs, a tensor N×C×H×W saved with torch.save (already "
                              "normalised as the network expects); real data is what gives real accuracy.")(f)
        f = click.option("--calibrate", type=click.IntRange(min=1), default=None, metavar="N",
                         help=f"int8: calibrate on N batches of {CALIBRATION_BATCH} drawn from a standard normal of "
                              "the spec's input shape (normalised input's first two moments).")(f)
        return click.option("--dtype", type=click.Choice(DTYPE_NAMES), default="fp32", show_default=True,
                            help=dtype_help)(f)

    return apply


def refuse(code: str, message: str, hint: str, exit_code: int = 1) -> NoReturn:
    click.echo(f"error[{code}]: {message}\n  = hint: {hint}", err=True)
    sys.exit(exit_code)


def check_request(dtype: str, device: str, calibrate: int | None, data: str | None) -> None:
    """Refuse, before any build, what the command line alone shows cannot run (exit 2, no traceback)."""
    if dtype != "int8" and (calibrate is not None or data is not None):
        option = "--calibrate" if calibrate is not None else "--calibrate-data"
        refuse(code="calibration-unused", message=f"--dtype {dtype}: {option} only applies to int8",
               hint="add --dtype int8, or leave the calibration option out", exit_code=2)
    if dtype != "int8":
        return
    if device.split(":")[0] != "cpu":
        refuse(code="unsupported-dtype",
               message=f"--dtype int8 --device {device}: int8 runs on the CPU only (oneDNN's VNNI kernels)",
               hint="use --dtype bf16 or fp16 on a GPU, or --device cpu", exit_code=2)
    if calibrate is None and data is None:
        refuse(code="calibration-needed", message="--dtype int8 needs calibration data to fix its scales",
               hint="add --calibrate-data FILE (real inputs: real accuracy) or --calibrate N (random batches)",
               exit_code=2)


def calibration_batches(input_shape: tuple[int, ...], calibrate: int | None, data: str | None,
                        seed: int | None) -> list[Any] | None:
    """The calibration batches: from --calibrate-data, else --calibrate N random ones, else None."""
    import torch

    if data is not None:
        return _batches_from(data, input_shape)
    if calibrate is None:
        return None
    gen = torch.Generator().manual_seed(seed if seed is not None else 0)
    return [torch.randn(CALIBRATION_BATCH, *input_shape, generator=gen) for _ in range(calibrate)]


def _batches_from(path: str, input_shape: tuple[int, ...]) -> list[Any]:
    import torch

    try:
        data = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # a file torch cannot read: the user's file, reported as such
        refuse(code="calibration-data", message=f"--calibrate-data {path}: not a tensor saved with torch.save ({exc})",
               hint="save the inputs with torch.save(tensor, FILE), a float tensor N×C×H×W")
    if not isinstance(data, torch.Tensor) or tuple(data.shape[1:]) != tuple(input_shape) or not len(data):
        found = f"shape {list(data.shape)}" if isinstance(data, torch.Tensor) else type(data).__name__
        refuse(code="calibration-data", message=f"--calibrate-data {path}: expected a tensor "
               f"N×{'×'.join(map(str, input_shape))} (the spec's input, N ≥ 1), found {found}",
               hint="save the inputs as the network takes them, batched along dim 0")
    return list(data.float().split(CALIBRATION_BATCH))


def lowp_failed(exc: Any) -> NoReturn:
    """A LowPrecisionError from archspec.optimize: located at --dtype, with its hint; exit 1."""
    refuse(exc.code, f"--dtype: {exc.message}", exc.hint)
