"""Merges of several inputs: `concat`, `add` and `mul`; and `scale` (multiply by a constant)."""

from __future__ import annotations

import operator
from typing import Any

from pydantic import Field

from .common import fmt_shape, same_shape
from .registry import (
    Attrs,
    FunctionCall,
    NoAttrs,
    Op,
    Shape,
    ShapeError,
    SourceArgs,
    SourceForm,
    channels_last,
    layout,
    register,
    relayout,
    tokens,
)
from .source import plus


def _shapes(ins: list[Shape]) -> str:
    return ", ".join(fmt_shape(s) for s in ins)


def _concat_infer(a: NoAttrs, ins: list[Shape]) -> Shape:
    """C₁×H×W, C₂×H×W, … → (C₁ + C₂ + …)×H×W; flat F₁, F₂, … → F₁ + F₂ + ….
    Refuses inputs that differ in rank or in H×W, and channels-last or token inputs."""
    if any(channels_last(s) or tokens(s) for s in ins):
        raise ShapeError("concat joins the channels of C×H×W (or flat) inputs", expected="channels-first inputs",
                         found=_shapes(ins), hint="permute the channels-last inputs back with `permute([0, 3, 1, 2])`")
    rank = len(ins[0])
    if any(len(s) != rank for s in ins):
        raise ShapeError("concat inputs differ in rank", expected="inputs of one rank", found=_shapes(ins))
    if any(s[1:] != ins[0][1:] for s in ins):
        raise ShapeError("concat inputs differ in spatial size",
                         expected=f"every input ×{fmt_shape(ins[0][1:])}" if rank > 1 else "equal sizes",
                         found=_shapes(ins),
                         hint="branches must keep H×W equal: check their strides, padding and ceil mode")
    return (sum(s[0] for s in ins),) + ins[0][1:]


def _concat_emit(a: NoAttrs, ins: list[Shape]) -> FunctionCall:
    import torch

    return FunctionCall(torch.cat, {"dim": 1}, pack=True)


def _concat_source(a: SourceArgs) -> SourceForm:
    return SourceForm(call=lambda xs: f"torch.cat([{', '.join(xs)}], 1)",
                      out_ch=plus(*(a.channels(i) for i in range(len(a.ins)))))


register(Op(
    name="concat", attrs=NoAttrs, infer=_concat_infer, emit=_concat_emit, arity=None, kind="merge",
    source=_concat_source,
    doc="Concatenates its inputs along channels, in the order written: a `concat:` construct, or "
        "`concat(b1, b2, b3)` with the names of its inputs.",
))


def broadcast(name: str, ins: list[Shape]) -> Shape:
    """The shape of an element-wise result by torch's broadcasting rule, for inputs of one rank and layout:
    each size equal across the inputs, or 1 (stretched to the others)."""
    if len({layout(s) for s in ins}) > 1:
        raise ShapeError(f"{name} inputs differ in layout", expected="inputs of one layout (C×H×W, H×W×C or L×D)",
                         found=_shapes(ins), hint="permute one of them first")
    rank = len(ins[0])
    if any(len(s) != rank for s in ins):
        raise ShapeError(f"{name} inputs differ in rank", expected="inputs of one rank", found=_shapes(ins),
                         hint="a C×1×1 gate broadcasts over C×H×W; a flat F does not (the batch axis would "
                              "line up with another)")
    out = []
    for axis, sizes in enumerate(zip(*ins, strict=True)):
        big = {d for d in sizes if d != 1}
        if len(big) > 1:
            raise ShapeError(f"{name} inputs differ in shape", expected=f"equal sizes, or 1, along axis {axis + 1}",
                             found=_shapes(ins))
        out.append(big.pop() if big else 1)
    return relayout(ins[0], out)


def sum_all(*xs: Any) -> Any:
    """Sum of any number of tensors (the `add` op with more than two inputs)."""
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def product(*xs: Any) -> Any:
    """Element-wise product of any number of tensors (the `mul` op with more than two inputs)."""
    out = xs[0]
    for x in xs[1:]:
        out = out * x
    return out


def _add_infer(a: NoAttrs, ins: list[Shape]) -> Shape:
    """Inputs of one shape (and layout) → that shape. Refuses inputs whose shapes differ: unlike `mul`, it
    does not broadcast, since a residual connection whose shapes differ is a mistake in a spec."""
    if any(s != ins[0] for s in ins):
        raise ShapeError("add inputs differ in shape", expected="equal shapes", found=_shapes(ins),
                         hint="to scale by a C×1×1 gate, use `mul`")
    return ins[0]


def _mul_infer(a: NoAttrs, ins: list[Shape]) -> Shape:
    """Inputs of one rank and layout → their broadcast shape, as torch broadcasts: along each axis the sizes
    are equal, or 1 and stretched (a C×1×1 gate times C×H×W gives C×H×W). Refuses other sizes, and inputs
    of different ranks or layouts."""
    return broadcast("mul", ins)


register(Op(
    name="add", attrs=NoAttrs, infer=_add_infer, arity=None, kind="merge",
    commutative=True,
    emit=lambda a, ins: FunctionCall(operator.add if len(ins) == 2 else sum_all),
    source=lambda a: SourceForm(call=lambda xs: " + ".join(xs)),
    doc="Element-wise sum of inputs of equal shape (a residual connection): an `add:` construct, or "
        "`add(residual, input)` with the names of its inputs.",
))
register(Op(
    name="mul", attrs=NoAttrs, infer=_mul_infer, arity=None, kind="merge",
    commutative=True,
    emit=lambda a, ins: FunctionCall(operator.mul if len(ins) == 2 else product),
    source=lambda a: SourceForm(call=lambda xs: " * ".join(xs)),
    doc="Element-wise product of the inputs named, `mul(gate, x)`: the squeeze-and-excitation gate, whose "
        "C×1×1 broadcasts over C×H×W.",
))


class ScaleAttrs(Attrs):
    factor: float = Field()


register(Op(
    name="scale", attrs=ScaleAttrs, infer=same_shape, kind="act",
    emit=lambda a, ins: FunctionCall(operator.mul, args=(a.factor,)),
    source=lambda a: SourceForm(call=lambda xs: f"{xs[0]} * {a.arg('factor')}"),
    label=lambda a: f"×{a.factor:g}",
    doc="Multiplies by a constant `factor` (the residual scaling of Inception-ResNet).",
))
