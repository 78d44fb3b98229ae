"""Normalisation: `bn` (batch norm), `layernorm` and `lrn` (local response norm)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .common import Pos, fmt_shape, need_chw
from .registry import (
    Attrs,
    Op,
    Shape,
    ShapeError,
    SourceArgs,
    SourceForm,
    channel_count,
    channels_last,
    register,
    tokens,
)
from .source import ctor, helper, required


class BatchNormAttrs(Attrs):
    eps: Annotated[float, Field(gt=0)] = 1e-5
    momentum: Annotated[float, Field(ge=0, le=1)] | None = 0.1
    affine: bool = True


def _bn_infer(a: BatchNormAttrs, ins: list[Shape]) -> Shape:
    """C×H×W → C×H×W; F → F. Refuses a channels-last H×W×C input."""
    if len(ins[0]) not in (1, 3) or channels_last(ins[0]):
        raise ShapeError("bn needs a C×H×W or a flat (F) input", expected="C×H×W or F",
                         found=fmt_shape(ins[0]))
    return ins[0]


def _bn_emit(a: BatchNormAttrs, ins: list[Shape]):
    from torch import nn

    cls = nn.BatchNorm2d if len(ins[0]) == 3 else nn.BatchNorm1d
    return cls(ins[0][0], eps=a.eps, momentum=a.momentum, affine=a.affine)


def _bn_source(a: SourceArgs) -> SourceForm:
    cls = "nn.BatchNorm2d" if len(a.ins[0]) == 3 else "nn.BatchNorm1d"
    return SourceForm(module=ctor(cls, a, [a.in_ch()], {"eps": "eps", "momentum": "momentum", "affine": "affine"}))


register(Op(
    name="bn", attrs=BatchNormAttrs, infer=_bn_infer, emit=_bn_emit, kind="norm",
    params=lambda a, ins, out: 2 * ins[0][0] if a.affine else 0,
    buffer_bytes=lambda a, ins: 2 * 4 * ins[0][0] + 8,  # float32 running mean and variance, int64 step count
    label=lambda a: "bn" if a.eps == 1e-5 else f"bn eps={a.eps:g}", source=_bn_source, torch_modules=("BatchNorm",),
    doc="Batch normalisation over channels (BatchNorm2d for C×H×W, BatchNorm1d for F). "
        "Its running mean and variance are buffers, not parameters.",
))


class LayerNormAttrs(Attrs):
    eps: Annotated[float, Field(gt=0)] = 1e-5
    affine: bool = True


def _ln_infer(a: LayerNormAttrs, ins: list[Shape]) -> Shape:
    """C×H×W → C×H×W, normalised over C at each position (torchvision's LayerNorm2d); H×W×C → H×W×C and
    F → F and L×D tokens → L×D, normalised over the last axis (nn.LayerNorm). `weight` and `bias` have
    shape (C,), (F,) or (D,)."""
    if len(ins[0]) not in (1, 3) and not tokens(ins[0]):
        raise ShapeError("layernorm needs C×H×W, H×W×C, L×D or F", expected="C×H×W, H×W×C, L×D or F",
                         found=fmt_shape(ins[0]))
    return ins[0]


def _ln_two_d(ins: list[Shape]) -> bool:
    """Whether the norm is over the channels of a channels-first image (LayerNorm2d)."""
    return len(ins[0]) == 3 and not channels_last(ins[0])


def _ln_emit(a: LayerNormAttrs, ins: list[Shape]):
    from torch import nn

    from .modules import LayerNorm2d

    cls = LayerNorm2d if _ln_two_d(ins) else nn.LayerNorm
    return cls(channel_count(ins[0]), eps=a.eps, elementwise_affine=a.affine)


def _ln_source(a: SourceArgs) -> SourceForm:
    keywords = {"eps": "eps", "affine": "elementwise_affine"}
    if _ln_two_d(a.ins):
        return SourceForm(module=ctor("LayerNorm2d", a, [a.in_ch()], keywords), helpers=(helper("LayerNorm2d"),))
    return SourceForm(module=ctor("nn.LayerNorm", a, [a.in_ch()], keywords))


register(Op(
    name="layernorm", attrs=LayerNormAttrs, infer=_ln_infer, emit=_ln_emit, kind="norm",
    params=lambda a, ins, out: 2 * (channel_count(ins[0]) or 0) if a.affine else 0,
    label=lambda a: "layernorm" if a.eps == 1e-5 else f"layernorm eps={a.eps:g}", source=_ln_source,
    torch_modules=("LayerNorm",),
    doc="Layer normalisation over the channels at each position: of C×H×W (as torchvision's LayerNorm2d in "
        "ConvNeXt), of a channels-last H×W×C, of every token of L×D, or of a flat F.",
))


class LRNAttrs(Attrs):
    size: Pos
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0


def _lrn_infer(a: LRNAttrs, ins: list[Shape]) -> Shape:
    """C×H×W → C×H×W."""
    need_chw("lrn", ins[0])
    return ins[0]


def _lrn_emit(a: LRNAttrs, ins: list[Shape]):
    from torch import nn

    return nn.LocalResponseNorm(a.size, alpha=a.alpha, beta=a.beta, k=a.k)


def _lrn_source(a: SourceArgs) -> SourceForm:
    keywords = {"alpha": "alpha", "beta": "beta", "k": "k"}
    return SourceForm(module=ctor("nn.LocalResponseNorm", a, [required(a, "size")], keywords))


register(Op(
    name="lrn", attrs=LRNAttrs, infer=_lrn_infer, emit=_lrn_emit, kind="norm",
    label=lambda a: f"lrn {a.size}", source=_lrn_source, torch_modules=("LocalResponseNorm",),
    doc="Local response normalisation across channels, as Caffe's LRN (alpha is divided by size).",
))
