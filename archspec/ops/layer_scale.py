"""`layer_scale(init)`: a learned per-channel scale owned by the enclosing module (ConvNeXt's `layer_scale`).

The op returns a `ParamCall`: its tensor is a parameter of the module of the
scope it sits in, under the node's own name. So the node `layer_scale` inside
the block `features/1/0` has the state_dict key `features.1.0.layer_scale`,
exactly torchvision's CNBlock key, not `features.1.0.layer_scale.weight`.
"""

from __future__ import annotations

import operator

from .common import fmt_shape
from .registry import (
    Attrs,
    Op,
    ParamCall,
    Shape,
    ShapeError,
    SourceArgs,
    SourceForm,
    channel_count,
    channels_last,
    register,
    tokens,
)


class LayerScaleAttrs(Attrs):
    init: float = 1e-6


def _param_shape(shape: Shape) -> tuple[int, ...]:
    """(C, 1, 1) for C×H×W, broadcasting over H×W; (C,) for H×W×C, L×D and F."""
    c = channel_count(shape) or 0
    return (c, 1, 1) if len(shape) == 3 and not channels_last(shape) else (c,)


def _infer(a: LayerScaleAttrs, ins: list[Shape]) -> Shape:
    """C×H×W → C×H×W, times a learned C×1×1; H×W×C → H×W×C, L×D → L×D and F → F, times a learned (C,),
    (D,) or (F,)."""
    if len(ins[0]) not in (1, 3) and not tokens(ins[0]):
        raise ShapeError("layer_scale needs C×H×W, H×W×C, L×D or F", expected="C×H×W, H×W×C, L×D or F",
                         found=fmt_shape(ins[0]))
    return ins[0]


def _emit(a: LayerScaleAttrs, ins: list[Shape]) -> ParamCall:
    import torch
    from torch import nn

    return ParamCall(nn.Parameter(torch.full(_param_shape(ins[0]), a.init)), operator.mul)


def _source(a: SourceArgs) -> SourceForm:
    dims = ", ".join([a.in_ch(), *("1" * (len(_param_shape(a.ins[0])) - 1))])
    init = a.arg("init") or repr(LayerScaleAttrs().init)
    return SourceForm(param=f"nn.Parameter(torch.full(({dims}{',' if ',' not in dims else ''}), {init}))",
                      call=lambda xs: f"{xs[0]} * {xs[1]}")


register(Op(
    name="layer_scale", attrs=LayerScaleAttrs, infer=_infer, emit=_emit, source=_source, kind="act",
    params=lambda a, ins, out: channel_count(ins[0]) or 0,
    label=lambda a: f"layer scale {a.init:g}",
    doc="Multiplies by a learned per-channel scale, initialised to `init` (ConvNeXt's layer scale). The tensor "
        "belongs to the enclosing block, named after the node: write `layer_scale: layer_scale(1e-6)` "
        "in a block to get torchvision's key `<block>.layer_scale`.",
))
