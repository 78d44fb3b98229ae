"""The `cbam` op, registered with archspec when this module is imported.

Everything here but `_emit` and `_source` is torch-free, so `archspec check` of a spec using `cbam`
never imports torch: those two import the module class only when a network is built or written.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from archspec.ops.registry import Attrs, Op, Shape, ShapeError, register


class CbamAttrs(Attrs):
    reduction: Annotated[int, Field(ge=1, strict=True)] = 16
    """The channel MLP's hidden width is C / reduction, rounded to the nearest integer (at least 1)."""
    k: Annotated[int, Field(ge=1, strict=True)] = 7
    """The spatial attention's kernel size (odd, so that it keeps H×W)."""
    bias: bool = False
    """Biases in the channel MLP (the paper's MLP has them; timm's CbamModule does not by default)."""


def hidden(a: CbamAttrs, channels: int) -> int:
    """round(C / reduction), halves rounded up, and at least 1."""
    return max(1, (2 * channels + a.reduction) // (2 * a.reduction))


def _infer(a: CbamAttrs, ins: list[Shape]) -> Shape:
    """C×H×W → C×H×W. Refuses a flat input and an even `k` (it would not keep H×W)."""
    if len(ins[0]) != 3:
        raise ShapeError("cbam needs a C×H×W input", expected="C×H×W",
                         found="×".join(map(str, ins[0])), hint="apply cbam before `flatten`")
    if a.k % 2 == 0:
        raise ShapeError(f"cbam's spatial kernel k={a.k} is even and would not keep H×W", expected="an odd k",
                         found=f"k={a.k}")
    return ins[0]


def _weights(a: CbamAttrs, ins: list[Shape], out: Shape) -> int:
    c = ins[0][0]
    return 2 * c * hidden(a, c) + 2 * a.k * a.k + 2  # MLP, 2→1 k×k conv, batch norm's scale and shift


def _params(a: CbamAttrs, ins: list[Shape], out: Shape) -> int:
    c = ins[0][0]
    return _weights(a, ins, out) + (hidden(a, c) + c if a.bias else 0)


def _macs(a: CbamAttrs, ins: list[Shape], out: Shape) -> int:
    c, h, w = ins[0]
    return 2 * 2 * c * hidden(a, c) + 2 * a.k * a.k * h * w  # the MLP on two descriptors, the k×k conv


def _emit(a: CbamAttrs, ins: list[Shape]):
    from .module import CBAM

    return CBAM(ins[0][0], a.reduction, a.k, bias=a.bias)


def _source(a: Any) -> Any:
    """The op in a standalone .py file (`-o .py`): a `CBAM(...)` call, and the class's source copied in."""
    import inspect

    from archspec.ops.registry import SourceForm

    from .module import CBAM

    given = [f"{name}={a.arg(name)}" for name in CbamAttrs.model_fields if a.arg(name) is not None]
    return SourceForm(module=f"CBAM({', '.join([a.in_ch(), *given])})", helpers=(inspect.getsource(CBAM),))


# archspec versions whose `Op` has a Python-source form (its `source` field) can write CBAM with `-o .py`
SOURCE = {"source": _source} if "source" in Op.__dataclass_fields__ else {}


register(Op(
    name="cbam", attrs=CbamAttrs, infer=_infer, emit=_emit, params=_params, macs=_macs, weights=_weights,
    buffer_bytes=lambda a, ins: 2 * 4 + 8,  # batch norm's running mean and variance (float32), step count (int64)
    label=lambda a: f"cbam r{a.reduction} {a.k}×{a.k}", **SOURCE,
    doc="CBAM (Woo et al. 2018): channel attention (a shared MLP over the average- and max-pooled channels), "
        "then spatial attention (a k×k convolution over the channel-wise mean and max). Keeps the shape.",
))
