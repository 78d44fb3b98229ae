"""`linear`, `flatten` and `dropout`."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field

from .common import Pos, fmt_shape, same_shape
from .registry import IDENTITY, Attrs, FunctionCall, NoAttrs, Op, Shape, ShapeError, register


class LinearAttrs(Attrs):
    out: Pos = Field(validation_alias=AliasChoices("out", "out_features"))
    bias: bool = True


def _linear_infer(a: LinearAttrs, ins: list[Shape]) -> Shape:
    """F → `out`. Refuses an input that is not flat (put `flatten` first)."""
    if len(ins[0]) != 1:
        raise ShapeError("linear needs a flat input", expected="F (one dimension)",
                         found=fmt_shape(ins[0]), hint="add `flatten` before the linear layer")
    return (a.out,)


def _linear_emit(a: LinearAttrs, ins: list[Shape]):
    from torch import nn

    return nn.Linear(ins[0][0], a.out, bias=a.bias)


register(Op(
    name="linear", attrs=LinearAttrs, infer=_linear_infer, emit=_linear_emit, kind="linear",
    params=lambda a, ins, out: ins[0][0] * a.out + (a.out if a.bias else 0),
    macs=lambda a, ins, out: ins[0][0] * a.out,
    weights=lambda a, ins, out: ins[0][0] * a.out,
    label=lambda a: f"linear {a.out}",
    doc="Fully connected layer; `in_features` is inferred from the (flat) input.",
))


def _flatten_infer(a: NoAttrs, ins: list[Shape]) -> Shape:
    """C×H×W → C·H·W; a flat F stays F."""
    n = 1
    for d in ins[0]:
        n *= d
    return (n,)


def _flatten_emit(a: NoAttrs, ins: list[Shape]) -> FunctionCall:
    import torch

    return IDENTITY if len(ins[0]) == 1 else FunctionCall(torch.flatten, {"start_dim": 1})


register(Op(
    name="flatten", attrs=NoAttrs, infer=_flatten_infer, emit=_flatten_emit, kind="reshape",
    doc="Flattens everything but the batch dimension: C×H×W → C·H·W.",
))


class DropoutAttrs(Attrs):
    p: Annotated[float, Field(ge=0, le=1)] = 0.5


def _dropout_emit(a: DropoutAttrs, ins: list[Shape]):
    from torch import nn

    return nn.Dropout(a.p)


register(Op(
    name="dropout", attrs=DropoutAttrs, infer=same_shape, emit=_dropout_emit,
    kind="regularize", label=lambda a: f"dropout {a.p:g}",
    doc="Dropout with probability `p` (active in training mode only).",
))
