"""Low precision as the last step of `optimize`: bf16/fp16 as real casts, int8 quantised from calibration.

    fast = archspec.optimize(model, dtype="bf16")
    fast = archspec.optimize(model, dtype="int8", calibrate=batches)   # batches: iterable of input tensors

`lower_precision` runs after the float32 passes, on the folded graph, so batch norms are folded
in float32 and the scales calibration measures are those of the convs that will run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import fx

from ..common import device_of
from .calibrate import observe
from .cast import cast_module
from .int8 import Dequantize, Quantize, QuantizedConv2d, Requantize, quantize_int8
from .support import DTYPES, TORCH_DTYPES, LowPrecisionError, check_supported

__all__ = ["DTYPES", "Dequantize", "LowPrecisionError", "QuantizedConv2d", "Quantize", "Requantize",
           "check_supported", "check_request", "lower_precision", "FLOAT_ONLY_PASSES"]

FLOAT_ONLY_PASSES = {"int8": ("fuse_conv",)}
"""Float32 passes left out under a dtype, because its own rewrite replaces what they make (int8 convs)."""


def check_request(dtype: str, device: Any, calibrate: Iterable[Any] | None) -> None:
    """Refuse, before any work, a dtype `device` cannot run or int8 without calibration batches."""
    check_supported(dtype, device)
    if dtype == "int8" and calibrate is None:
        raise LowPrecisionError(code="calibration-needed", message="int8 needs calibration batches to fix its scales",
                                hint="pass calibrate= an iterable of input batches (archspec build: --calibrate N "
                                "draws N batches from the spec's input statistics; real data gives real accuracy)")


def lower_precision(gm: fx.GraphModule, dtype: str, calibrate: Iterable[Any] | None) -> dict[str, int]:
    """Rewrite the optimised float32 `gm` in place to run in `dtype`; {step: rewrites made} (empty for fp32)."""
    if dtype in TORCH_DTYPES:
        return {f"cast_{dtype}": cast_module(gm, TORCH_DTYPES[dtype])}
    if dtype == "int8":
        assert calibrate is not None
        ranges = observe(gm, calibrate, device_of(gm))
        return {"quantize_int8": quantize_int8(gm, ranges)}
    return {}
