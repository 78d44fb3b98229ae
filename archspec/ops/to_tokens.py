"""`to_tokens`: a patch embedding's D×h×w map as a sequence of h·w tokens of width D (ViT).

A Vision Transformer cuts the image into patches with a conv of stride = kernel =
the patch size (`conv(768, 16, s=16)`), then reads the D×h×w result as h·w tokens,
row by row: torchvision's `x.reshape(n, D, h * w).permute(0, 2, 1)`.
"""

from __future__ import annotations

from .common import fmt_shape
from .registry import (
    FunctionCall,
    NoAttrs,
    Op,
    Shape,
    ShapeError,
    SourceArgs,
    SourceForm,
    Tokens,
    channels_last,
    register,
    tokens,
)
from .source import helper


def _infer(a: NoAttrs, ins: list[Shape]) -> Shape:
    """D×h×w → (h·w)×D tokens, one per position in row-major order. Refuses anything but a channels-first
    image tensor."""
    shape = ins[0]
    if len(shape) != 3 or channels_last(shape) or tokens(shape):
        raise ShapeError("to_tokens needs a channels-first D×h×w map (a patch embedding's output)",
                         expected="D×h×w", found=fmt_shape(shape),
                         hint="put a patch-embedding conv before it, e.g. conv(768, 16, s=16)")
    d, h, w = shape
    return Tokens((h * w, d))


def _emit(a: NoAttrs, ins: list[Shape]) -> FunctionCall:
    from .modules import to_tokens

    return FunctionCall(to_tokens)


def _source(a: SourceArgs) -> SourceForm:
    return SourceForm(call=lambda xs: f"to_tokens({xs[0]})", helpers=(helper("to_tokens"),))


register(Op(
    name="to_tokens", attrs=NoAttrs, infer=_infer, emit=_emit, source=_source, kind="tokens",
    label=lambda a: "to tokens",
    doc="Reads a D×h×w map as h·w tokens of width D, row by row (N×D×h×w → N×(h·w)×D): the step from a "
        "Vision Transformer's patch-embedding conv to its encoder.",
))
