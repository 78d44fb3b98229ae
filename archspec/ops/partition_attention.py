"""`partition_attention(size, head_dim, mode=block, scale=null)`: MaxViT's block and grid attention.

One op does partition, attention and departition over a channels-last H×W×C map:
the LayerNorm, MLP, residual adds and stochastic depth around it act on each
position alone, so they give the same result on the partitioned tensor or on
H×W×C, and a spec writes them as the ordinary ops (`layernorm`, `linear`,
`drop_path`, `add`) around this one. Its module, `PartitionAttention` in
modules.py, holds torchvision's keys (`to_qkv`, `merge`,
`relative_position_bias_table`, the buffer `relative_position_index`) and
computes with `F.scaled_dot_product_attention`, the bias as its mask.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field

from .common import Pos, fmt_shape
from .registry import Attrs, Op, Shape, ShapeError, SourceArgs, SourceForm, channels_last, register
from .source import ctor, helper, required


class PartitionAttentionAttrs(Attrs):
    size: Pos
    head_dim: Pos
    mode: Literal["block", "grid"] = "block"
    scale: float | None = Field(None, validation_alias=AliasChoices("scale", "scale_factor"))


def _infer(a: PartitionAttentionAttrs, ins: list[Shape]) -> Shape:
    """H×W×C → H×W×C (channels last). `block`: attention within each size×size window; `grid`: within each
    of the groups of a size×size grid whose positions lie H/size and W/size apart. Refuses a channels-first
    or flat input, C not a multiple of `head_dim`, and H or W not a multiple of `size` (`indivisible-size`)."""
    shape = ins[0]
    if not channels_last(shape):
        found = f"{fmt_shape(shape)} ({'C×H×W' if len(shape) == 3 else 'F'})"
        raise ShapeError("partition_attention needs a channels-last H×W×C input", expected="H×W×C", found=found,
                         hint="put `permute([0, 2, 3, 1])` before it" if len(shape) == 3 else None)
    h, w, c = shape
    if c % a.head_dim:
        raise ShapeError(f"{c} channels do not split into heads of {a.head_dim}",
                         expected=f"C a multiple of head_dim {a.head_dim}", found=fmt_shape(shape))
    if h % a.size or w % a.size:
        what = f"{a.size}×{a.size} windows" if a.mode == "block" else f"a {a.size}×{a.size} grid"
        raise ShapeError(f"{a.mode} attention over {what} needs H and W divisible by {a.size}",
                         expected=f"H and W multiples of {a.size}", found=f"H×W = {h}×{w}",
                         hint="change the input size or the partition size",
                         code="indivisible-size")
    return shape


def _heads(a: PartitionAttentionAttrs, ins: list[Shape]) -> int:
    return ins[0][-1] // a.head_dim


def _params(a: PartitionAttentionAttrs, ins: list[Shape], out: Shape) -> int:
    c = ins[0][-1]
    return 3 * c * c + 3 * c + c * c + c + (2 * a.size - 1) ** 2 * _heads(a, ins)


def _weights(a: PartitionAttentionAttrs, ins: list[Shape], out: Shape) -> int:
    """The two linear layers' weights and the bias table (which is not an additive bias of a layer)."""
    c = ins[0][-1]
    return 4 * c * c + (2 * a.size - 1) ** 2 * _heads(a, ins)


def _macs(a: PartitionAttentionAttrs, ins: list[Shape], out: Shape) -> int:
    """Per position: 3C² (queries, keys, values) + C² (merge) + 2·T·C (QKᵀ and AV over the T = size² tokens of
    its group, all heads together)."""
    h, w, c = ins[0]
    return h * w * (4 * c * c + 2 * a.size * a.size * c)


def _emit(a: PartitionAttentionAttrs, ins: list[Shape]):
    from .modules import PartitionAttention

    return PartitionAttention(ins[0][-1], a.size, a.head_dim, mode=a.mode, scale=a.scale)


def _source(a: SourceArgs) -> SourceForm:
    first = [a.in_ch(), required(a, "size"), required(a, "head_dim")]
    return SourceForm(module=ctor("PartitionAttention", a, first, {"mode": "mode", "scale": "scale"}),
                      helpers=(helper("PartitionAttention"),))


def _grouping(a: PartitionAttentionAttrs) -> tuple[Any, Any]:
    from .modules import PartitionAttention as P

    return lambda x: P.partition(x, a.size, a.mode), lambda y, h, w: P.departition(y, h, w, a.size, a.mode)


def _label(a: PartitionAttentionAttrs) -> str:
    return f"{a.mode} attention {a.size}×{a.size}, {a.head_dim}/head"


def _canonical(a: PartitionAttentionAttrs, ins: list[Shape]) -> PartitionAttentionAttrs:
    """One window that covers the whole map is one grid over it too: the same grouping, the same order."""
    h, w = ins[0][:2]
    return a.model_copy(update={"mode": "block"}) if h == w == a.size else a


register(Op(
    name="partition_attention", attrs=PartitionAttentionAttrs, infer=_infer, emit=_emit, source=_source,
    params=_params, weights=_weights, macs=_macs, kind="attention", label=_label,
    buffer_bytes=lambda a, ins: 8 * a.size**4,  # relative_position_index: int64, T×T
    torch_modules=("PartitionAttention", "RelativePositionalMultiHeadAttention"), grouping=_grouping,
    canonical=_canonical,
    doc="MaxViT's relative-position multi-head self-attention over a channels-last H×W×C map, within groups "
        "of size×size positions: the windows of adjacent positions (`mode=block`) or a size×size grid "
        "spread over the map, its positions H/size and W/size apart (`mode=grid`); partition and departition "
        "are part of the op. Heads of `head_dim` channels; a learned bias per relative position and head is "
        "added to the attention logits; the logits are scaled by `scale` (default head_dim^-0.5; torchvision's "
        "MaxViT scales by C^-0.5). The module's keys are torchvision's: `to_qkv`, `merge`, "
        "`relative_position_bias_table` and the buffer `relative_position_index`.",
))
