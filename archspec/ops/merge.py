"""Merges of several inputs: `concat` and `add`; and `scale` (multiply by a constant)."""

from __future__ import annotations

import operator
from typing import Any

from pydantic import Field

from .common import fmt_shape, same_shape
from .registry import Attrs, FunctionCall, NoAttrs, Op, Shape, ShapeError, register


def _concat_infer(a: NoAttrs, ins: list[Shape]) -> Shape:
    """C₁×H×W, C₂×H×W, … → (C₁ + C₂ + …)×H×W; flat F₁, F₂, … → F₁ + F₂ + ….
    Refuses inputs that differ in rank or in H×W."""
    rank = len(ins[0])
    if any(len(s) != rank for s in ins):
        raise ShapeError("concat inputs differ in rank",
                         expected="inputs of one rank", found=", ".join(fmt_shape(s) for s in ins))
    if any(s[1:] != ins[0][1:] for s in ins):
        raise ShapeError("concat inputs differ in spatial size",
                         expected=f"every input ×{fmt_shape(ins[0][1:])}" if rank > 1 else "equal sizes",
                         found=", ".join(fmt_shape(s) for s in ins),
                         hint="branches must keep H×W equal: check their strides, padding and ceil mode")
    return (sum(s[0] for s in ins),) + ins[0][1:]


def _concat_emit(a: NoAttrs, ins: list[Shape]) -> FunctionCall:
    import torch

    return FunctionCall(torch.cat, {"dim": 1}, pack=True)


register(Op(
    name="concat", attrs=NoAttrs, infer=_concat_infer, emit=_concat_emit, arity=None, kind="merge",
    doc="Concatenates its inputs along channels, in the order written: a `concat:` construct, or "
        "`concat(b1, b2, b3)` with the names of its inputs.",
))


def sum_all(*xs: Any) -> Any:
    """Sum of any number of tensors (the `add` op with more than two inputs)."""
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def _add_infer(a: NoAttrs, ins: list[Shape]) -> Shape:
    """Inputs of one shape → that shape. Refuses inputs whose shapes differ (it does not broadcast)."""
    if any(s != ins[0] for s in ins):
        raise ShapeError("add inputs differ in shape", expected="equal shapes",
                         found=", ".join(fmt_shape(s) for s in ins))
    return ins[0]


register(Op(
    name="add", attrs=NoAttrs, infer=_add_infer, arity=None, kind="merge",
    emit=lambda a, ins: FunctionCall(operator.add if len(ins) == 2 else sum_all),
    doc="Element-wise sum of inputs of equal shape (a residual connection): an `add:` construct, or "
        "`add(residual, input)` with the names of its inputs.",
))


class ScaleAttrs(Attrs):
    factor: float = Field()


register(Op(
    name="scale", attrs=ScaleAttrs, infer=same_shape, kind="act",
    emit=lambda a, ins: FunctionCall(operator.mul, args=(a.factor,)),
    label=lambda a: f"×{a.factor:g}",
    doc="Multiplies by a constant `factor` (the residual scaling of Inception-ResNet).",
))
