"""`linear`, `flatten`, `dropout` and `drop_path`."""

from __future__ import annotations

from math import prod
from typing import Annotated

from pydantic import AliasChoices, Field

from .common import Pos, fmt_shape, same_shape
from .registry import (
    IDENTITY,
    SOURCE_IDENTITY,
    Attrs,
    FunctionCall,
    NoAttrs,
    Op,
    Shape,
    ShapeError,
    SourceArgs,
    SourceForm,
    channel_count,
    channels_last,
    register,
    relayout,
    tokens,
)
from .source import call, ctor, helper, required, times


class LinearAttrs(Attrs):
    out: Pos = Field(validation_alias=AliasChoices("out", "out_features"))
    bias: bool = True


def _linear_infer(a: LinearAttrs, ins: list[Shape]) -> Shape:
    """F → `out`; H×W×C (channels last) → H×W×`out`, the same layer at every position (ConvNeXt's
    pointwise linear); L×D tokens → L×`out`, the same layer for every token. Refuses a channels-first
    C×H×W input (flatten it, or permute it to H×W×C)."""
    shape = ins[0]
    if channels_last(shape) or tokens(shape):
        return relayout(shape, (*shape[:-1], a.out))
    if len(shape) != 1:
        raise ShapeError("linear needs a flat input, a channels-last one or tokens", expected="F, H×W×C or L×D",
                         found=fmt_shape(shape),
                         hint="add `flatten` before the linear layer, or `permute([0, 2, 3, 1])` for a linear "
                              "over the channels at each position")
    return (a.out,)


def _positions(ins: list[Shape]) -> int:
    """How many times a layer over the last axis is applied: 1 for F, H·W for H×W×C, L for L×D."""
    return prod(ins[0][:-1])


def _linear_emit(a: LinearAttrs, ins: list[Shape]):
    from torch import nn

    return nn.Linear(channel_count(ins[0]) or 0, a.out, bias=a.bias)


def _linear_source(a: SourceArgs) -> SourceForm:
    return SourceForm(module=ctor("nn.Linear", a, [a.in_ch(), required(a, "out")], {"bias": "bias"}),
                      out_ch=a.expr("out"))


register(Op(
    name="linear", attrs=LinearAttrs, infer=_linear_infer, emit=_linear_emit, kind="linear",
    params=lambda a, ins, out: ins[0][-1] * a.out + (a.out if a.bias else 0),
    macs=lambda a, ins, out: _positions(ins) * ins[0][-1] * a.out,
    weights=lambda a, ins, out: ins[0][-1] * a.out,
    label=lambda a: f"linear {a.out}", source=_linear_source, torch_modules=("Linear",),
    doc="Fully connected layer over the last axis: of a flat input, of a channels-last H×W×C one at "
        "every position, or of every token of L×D. `in_features` is inferred.",
))


def _flatten_infer(a: NoAttrs, ins: list[Shape]) -> Shape:
    """C×H×W → C·H·W (H×W×C → H·W·C, in that order); a flat F stays F."""
    return (prod(ins[0]),)


def _flatten_emit(a: NoAttrs, ins: list[Shape]) -> FunctionCall:
    import torch

    return IDENTITY if len(ins[0]) == 1 else FunctionCall(torch.flatten, {"start_dim": 1})


def _flatten_source(a: SourceArgs) -> SourceForm:
    if len(a.ins[0]) == 1:
        return SOURCE_IDENTITY
    others = prod(a.ins[0]) // (channel_count(a.ins[0]) or 1)
    return SourceForm(module="nn.Flatten()", call=lambda xs: f"torch.flatten({xs[0]}, 1)",
                      out_ch=times(a.channels(0), others))


register(Op(
    name="flatten", attrs=NoAttrs, infer=_flatten_infer, emit=_flatten_emit, kind="reshape",
    source=_flatten_source,
    doc="Flattens everything but the batch dimension: C×H×W → C·H·W.",
))


class DropoutAttrs(Attrs):
    p: Annotated[float, Field(ge=0, le=1)] = 0.5


def _dropout_emit(a: DropoutAttrs, ins: list[Shape]):
    from torch import nn

    return nn.Dropout(a.p)


def _dropout_source(a: SourceArgs) -> SourceForm:
    p = a.arg("p")
    return SourceForm(module=call("nn.Dropout", [p] if p is not None else []))


register(Op(
    name="dropout", attrs=DropoutAttrs, infer=same_shape, emit=_dropout_emit, source=_dropout_source,
    kind="regularize", label=lambda a: f"dropout {a.p:g}", torch_modules=("Dropout",),
    doc="Dropout with probability `p` (active in training mode only).",
))


class DropPathAttrs(Attrs):
    p: Annotated[float, Field(ge=0, le=1)]


def _drop_path_emit(a: DropPathAttrs, ins: list[Shape]):
    from .modules import DropPath

    return DropPath(a.p)


def _drop_path_source(a: SourceArgs) -> SourceForm:
    return SourceForm(module=call("DropPath", [required(a, "p")]), helpers=(helper("DropPath"),))


register(Op(
    name="drop_path", attrs=DropPathAttrs, infer=same_shape, emit=_drop_path_emit, source=_drop_path_source,
    kind="regularize", label=lambda a: f"drop path {a.p:g}", torch_modules=("DropPath", "StochasticDepth"),
    doc="Stochastic depth (torchvision's StochasticDepth(p, \"row\")): in training, each sample's whole tensor "
        "is zeroed with probability `p` and the kept ones scaled by 1 / (1 − p); the identity in eval. Put it on "
        "a residual branch, before the `add`.",
))
