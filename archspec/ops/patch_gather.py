"""`patch_gather`: the 2×2 gather of Swin's patch merging, H×W×C → ⌈H/2⌉×⌈W/2⌉×4C.

Patch merging itself is this gather, a `layernorm` and a `linear(2C, bias=false)`
(V1 normalises before the linear, V2 after): written in the spec, so the norm and
the reduction keep torchvision's keys `<merge>.norm` and `<merge>.reduction`.
"""

from __future__ import annotations

from .common import fmt_shape
from .registry import (
    ChannelsLast,
    FunctionCall,
    NoAttrs,
    Op,
    Shape,
    ShapeError,
    SourceArgs,
    SourceForm,
    channels_last,
    register,
)
from .source import helper, times


def _infer(a: NoAttrs, ins: list[Shape]) -> Shape:
    """H×W×C → ⌈H/2⌉×⌈W/2⌉×4C: the four positions of each 2×2 patch side by side on the channels, in
    torchvision's order (0, 0), (1, 0), (0, 1), (1, 1) as (row, column); an odd H or W is padded with zeros
    first. Refuses C×H×W and F."""
    shape = ins[0]
    if not channels_last(shape) or len(shape) != 3:
        raise ShapeError("patch_gather needs a channels-last H×W×C input", expected="H×W×C", found=fmt_shape(shape),
                         hint="put `permute([0, 2, 3, 1])` before it")
    h, w, c = shape
    return ChannelsLast((-(-h // 2), -(-w // 2), 4 * c))


def _emit(a: NoAttrs, ins: list[Shape]) -> FunctionCall:
    from .window_modules import patch_gather

    return FunctionCall(patch_gather)


def _source(a: SourceArgs) -> SourceForm:
    return SourceForm(call=lambda xs: f"patch_gather({xs[0]})", helpers=(helper("patch_gather", "window_modules.py"),),
                      out_ch=times(a.channels(0), 4))


register(Op(
    name="patch_gather", attrs=NoAttrs, infer=_infer, emit=_emit, source=_source, kind="reshape",
    label=lambda a: "2×2 gather",
    doc="Swin's patch merging gather over a channels-last H×W×C map: each 2×2 patch becomes one position "
        "with its four positions' channels side by side (4C), an odd H or W padded with zeros first. Follow "
        "it with `layernorm` and `linear(2 * C, bias=false)` (V1; V2 puts the norm after the linear) for "
        "torchvision's PatchMerging.",
))
