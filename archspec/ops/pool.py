"""Pooling: `maxpool`, `avgpool`, `adaptive_avgpool`, `adaptive_maxpool`, `global_avgpool`, `mean`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, BeforeValidator, Field

from .common import NonNegPair, Pos, PosPair, check_spatial, fmt_pair, fmt_window, need_chw, pool_size, to_pair
from .registry import Attrs, FunctionCall, NoAttrs, Op, Shape, ShapeError, SourceArgs, SourceForm, register
from .source import ctor, required

_K = Field(validation_alias=AliasChoices("k", "kernel", "kernel_size"))
_S = Field(None, validation_alias=AliasChoices("s", "stride"))
_P = Field((0, 0), validation_alias=AliasChoices("p", "pad", "padding"))
_CEIL = Field(False, validation_alias=AliasChoices("ceil", "ceil_mode"))


class MaxPoolAttrs(Attrs):
    k: PosPair = _K
    s: PosPair | None = _S
    p: NonNegPair = _P
    d: PosPair = Field((1, 1), validation_alias=AliasChoices("d", "dilation"))
    ceil: bool = _CEIL


class AvgPoolAttrs(Attrs):
    k: PosPair = _K
    s: PosPair | None = _S
    p: NonNegPair = _P
    ceil: bool = _CEIL
    count_include_pad: bool = True


def _stride(a: Any) -> tuple[int, int]:
    return a.s if a.s is not None else a.k  # PyTorch: stride defaults to the kernel size


def _window(name: str, a: Any, ins: list[Shape], d: tuple[int, int]) -> Shape:
    c, h, w = need_chw(name, ins[0])
    s = _stride(a)
    for i in range(2):
        if a.p[i] * 2 > a.k[i]:
            raise ShapeError(f"{name} padding must be at most half the kernel (as in PyTorch)",
                             expected=f"p ≤ {a.k[i] // 2} for kernel {a.k[i]}", found=f"p={a.p[i]}")
    out_hw = (pool_size(h, a.k[0], s[0], a.p[0], d[0], a.ceil), pool_size(w, a.k[1], s[1], a.p[1], d[1], a.ceil))
    check_spatial(name, (h, w), out_hw, lambda: fmt_window(a.k, s))
    return (c, out_hw[0], out_hw[1])


def _maxpool_infer(a: MaxPoolAttrs, ins: list[Shape]) -> Shape:
    """C×H×W → C×H′×W′ with H′ = ⌊(H + 2p − d·(k − 1) − 1 + (s − 1 if `ceil`)) / s⌋ + 1, less one when
    `ceil` would start the last window in the right padding (at H + p or beyond); likewise W′.
    Refuses p > k/2 and an output below 1×1."""
    return _window("maxpool", a, ins, a.d)


def _avgpool_infer(a: AvgPoolAttrs, ins: list[Shape]) -> Shape:
    """C×H×W → C×H′×W′ with H′ = ⌊(H + 2p − k + (s − 1 if `ceil`)) / s⌋ + 1, less one when `ceil` would
    start the last window in the right padding (at H + p or beyond); likewise W′.
    Refuses p > k/2 and an output below 1×1."""
    return _window("avgpool", a, ins, (1, 1))


def _label(name: str):
    def label(a: Any) -> str:
        ceil = " ceil" if a.ceil else ""
        pad = f" p{fmt_pair(a.p)}" if a.p != (0, 0) else ""
        dilation = f" d{fmt_pair(a.d)}" if getattr(a, "d", (1, 1)) != (1, 1) else ""
        return f"{name} {fmt_window(a.k, _stride(a))}{pad}{dilation}{ceil}"
    return label


def _emit_max(a: MaxPoolAttrs, ins: list[Shape]):
    from torch import nn

    return nn.MaxPool2d(a.k, stride=_stride(a), padding=a.p, dilation=a.d, ceil_mode=a.ceil)


def _emit_avg(a: AvgPoolAttrs, ins: list[Shape]):
    from torch import nn

    return nn.AvgPool2d(a.k, stride=_stride(a), padding=a.p, ceil_mode=a.ceil,
                        count_include_pad=a.count_include_pad)


def _source_max(a: SourceArgs) -> SourceForm:
    keywords = {"s": "stride", "p": "padding", "d": "dilation", "ceil": "ceil_mode"}
    return SourceForm(module=ctor("nn.MaxPool2d", a, [required(a, "k")], keywords))


def _source_avg(a: SourceArgs) -> SourceForm:
    keywords = {"s": "stride", "p": "padding", "ceil": "ceil_mode", "count_include_pad": "count_include_pad"}
    return SourceForm(module=ctor("nn.AvgPool2d", a, [required(a, "k")], keywords))


register(Op(
    name="maxpool", attrs=MaxPoolAttrs, kind="pool", label=_label("maxpool"),
    infer=_maxpool_infer, emit=_emit_max, source=_source_max, torch_modules=("MaxPool",),
    doc="Max pooling. `s` defaults to `k` (as in PyTorch); `ceil=true` rounds the output size up, "
        "dropping a last window that would start in the right padding.",
))
register(Op(
    name="avgpool", attrs=AvgPoolAttrs, kind="pool", label=_label("avgpool"),
    infer=_avgpool_infer, emit=_emit_avg, source=_source_avg, torch_modules=("AvgPool",),
    doc="Average pooling; `count_include_pad` (default true, as in PyTorch) divides by the full "
        "window including padding.",
))


def _out_size(v: Any) -> Any:
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return tuple(v)
    return to_pair(v)


class AdaptiveAttrs(Attrs):
    out: Annotated[tuple[Pos | None, Pos | None], BeforeValidator(_out_size)] = Field(
        validation_alias=AliasChoices("out", "size", "output_size"))


def _adaptive(name: str):
    def infer(a: AdaptiveAttrs, ins: list[Shape]) -> Shape:
        """C×H×W → C×out[0]×out[1]; a size given as null keeps the input's."""
        c, h, w = need_chw(name, ins[0])
        return (c, a.out[0] or h, a.out[1] or w)
    return infer


def _adaptive_label(name: str):
    def label(a: AdaptiveAttrs) -> str:
        return f"{name} → {a.out[0] or 'H'}×{a.out[1] or 'W'}"
    return label


def _emit_adaptive(cls_name: str):
    def emit(a: AdaptiveAttrs, ins: list[Shape]):
        from torch import nn

        return getattr(nn, cls_name)(a.out)
    return emit


def _source_adaptive(cls_name: str):
    def source(a: SourceArgs) -> SourceForm:
        return SourceForm(module=f"nn.{cls_name}({required(a, 'out')})")
    return source


register(Op(
    name="adaptive_avgpool", attrs=AdaptiveAttrs, kind="pool", infer=_adaptive("adaptive_avgpool"),
    emit=_emit_adaptive("AdaptiveAvgPool2d"), label=_adaptive_label("adaptive avgpool"),
    source=_source_adaptive("AdaptiveAvgPool2d"), torch_modules=("AdaptiveAvgPool",),
    doc="Adaptive average pooling to a fixed output size `out` (a number or [h, w]).",
))
register(Op(
    name="adaptive_maxpool", attrs=AdaptiveAttrs, kind="pool", infer=_adaptive("adaptive_maxpool"),
    emit=_emit_adaptive("AdaptiveMaxPool2d"), label=_adaptive_label("adaptive maxpool"),
    source=_source_adaptive("AdaptiveMaxPool2d"), torch_modules=("AdaptiveMaxPool",),
    doc="Adaptive max pooling to a fixed output size `out`.",
))


def _emit_global(a: NoAttrs, ins: list[Shape]):
    from torch import nn

    return nn.AdaptiveAvgPool2d((1, 1))


def _global_infer(a: NoAttrs, ins: list[Shape]) -> Shape:
    """C×H×W → C×1×1."""
    return (need_chw("global_avgpool", ins[0])[0], 1, 1)


register(Op(
    name="global_avgpool", attrs=NoAttrs, kind="pool",
    infer=_global_infer,
    emit=_emit_global, label=lambda a: "global avgpool",
    source=lambda a: SourceForm(module="nn.AdaptiveAvgPool2d(1)"), same_as=("adaptive_avgpool", {"out": 1}),
    doc="Average over all of H×W, giving C×1×1 (adaptive average pooling to 1×1).",
))


def _mean_infer(a: NoAttrs, ins: list[Shape]) -> Shape:
    """C×H×W → C (flat): the mean over H×W."""
    return (need_chw("mean", ins[0])[0],)


def _mean_emit(a: NoAttrs, ins: list[Shape]) -> FunctionCall:
    import torch

    return FunctionCall(torch.mean, {"dim": [2, 3]})


register(Op(
    name="mean", attrs=NoAttrs, kind="pool", infer=_mean_infer, emit=_mean_emit, label=lambda a: "mean H×W",
    source=lambda a: SourceForm(call=lambda xs: f"{xs[0]}.mean([2, 3])"),
    doc="The mean over H×W, flat: `x.mean([2, 3])` as MNASNet and ShuffleNetV2 write it. It equals "
        "`global_avgpool` then `flatten` up to float rounding (1e-6), without the module.",
))
