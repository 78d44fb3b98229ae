"""`permute`: between channels-first C×H×W and channels-last H×W×C (ConvNeXt's `Permute([0, 2, 3, 1])`).

Shapes carry their layout (`ChannelsLast`), so an op over the last axis
(`layernorm`, `linear`) can take H×W×C while convs and pools refuse it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from .common import fmt_shape
from .registry import (
    Attrs,
    ChannelsLast,
    FunctionCall,
    Op,
    Shape,
    ShapeError,
    SourceArgs,
    SourceForm,
    channels_last,
    register,
)
from .source import call, helper, required


def _permutation(dims: tuple[int, ...]) -> tuple[int, ...]:
    if sorted(dims) != [0, 1, 2, 3] or dims[0] != 0:
        raise ValueError("expected the axes [0, 1, 2, 3] of N×C×H×W in a new order, the batch axis 0 first")
    return dims


class PermuteAttrs(Attrs):
    dims: Annotated[tuple[int, int, int, int], AfterValidator(_permutation)]


TO_LAST = (0, 2, 3, 1)
TO_FIRST = (0, 3, 1, 2)


def _infer(a: PermuteAttrs, ins: list[Shape]) -> Shape:
    """C×H×W with [0, 2, 3, 1] → H×W×C (channels last); H×W×C with [0, 3, 1, 2] → C×H×W; [0, 1, 3, 2] swaps
    H and W of C×H×W (and [0, 2, 1, 3] those of H×W×C). Refuses an order that would leave the channels
    in the middle, and a flat input."""
    shape = ins[0]
    if len(shape) != 3:
        raise ShapeError("permute needs an image tensor", expected="C×H×W or H×W×C", found=fmt_shape(shape))
    moved = tuple(shape[d - 1] for d in a.dims[1:])
    last = channels_last(shape)
    if a.dims == (TO_FIRST if last else TO_LAST):
        return tuple(moved) if last else ChannelsLast(moved)
    if a.dims in ((0, 1, 2, 3), (0, 2, 1, 3) if last else (0, 1, 3, 2)):
        return ChannelsLast(moved) if last else moved
    want = "[0, 3, 1, 2] (to C×H×W)" if last else "[0, 2, 3, 1] (to H×W×C)"
    raise ShapeError(f"permute {list(a.dims)} of {'H×W×C' if last else 'C×H×W'} gives neither layout",
                     expected=want, found=str(list(a.dims)),
                     hint="archspec knows two layouts of an image tensor: C×H×W and H×W×C")


def _emit(a: PermuteAttrs, ins: list[Shape]) -> FunctionCall:
    import torch

    return FunctionCall(torch.permute, args=(list(a.dims),))


def _source(a: SourceArgs) -> SourceForm:
    dims = required(a, "dims")
    return SourceForm(module=call("Permute", [dims]), call=lambda xs: f"{xs[0]}.permute({dims})",
                      helpers=(helper("Permute"),))


def _label(a: PermuteAttrs) -> str:
    return {TO_LAST: "to H×W×C", TO_FIRST: "to C×H×W"}.get(a.dims, f"permute {list(a.dims)}")


register(Op(
    name="permute", attrs=PermuteAttrs, infer=_infer, emit=_emit, source=_source, kind="reshape", label=_label,
    torch_modules=("Permute",),
    doc="Reorders the axes of N×C×H×W as `torch.permute` does, batch axis included: `permute([0, 2, 3, 1])` "
        "puts the channels last (H×W×C) for a `layernorm` or `linear` over them, `permute([0, 3, 1, 2])` "
        "puts them back first.",
))
