"""`window_attention(heads, window, shift, v2)`: Swin's shifted-window multi-head self-attention over H×W×C.

The emitted module (`ShiftedWindowAttention`, archspec/ops/window_modules.py) owns
the `qkv` and `proj` linear layers and the relative position bias: V1's learned
`relative_position_bias_table`, or V2's `logit_scale` and `cpb_mlp`, with their
index buffers, under torchvision's names, so `<block>.attn.qkv.weight` and the
buffers `relative_position_index` (and V2's `relative_coords_table`) load from
torchvision's state_dict as they are.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field

from .common import NonNegPair, Pos, PosPair, fmt_pair, fmt_shape
from .registry import Attrs, Op, Shape, ShapeError, SourceArgs, SourceForm, channels_last, register
from .source import call, helper, required

CPB_HIDDEN = 512
"""The width of V2's continuous position bias MLP (2 → 512 → heads)."""


class WindowAttentionAttrs(Attrs):
    heads: Pos = Field(validation_alias=AliasChoices("heads", "num_heads"))
    window: PosPair = Field(validation_alias=AliasChoices("window", "window_size"))
    shift: NonNegPair = Field((0, 0), validation_alias=AliasChoices("shift", "shift_size"))
    v2: bool = False
    qkv_bias: bool = True
    proj_bias: bool = True


def _infer(a: WindowAttentionAttrs, ins: list[Shape]) -> Shape:
    """H×W×C → H×W×C. C must divide by `heads`, and the shift must be smaller than the window. Any H×W
    works: the map is padded to a multiple of the window, and where the window covers the whole padded
    map along an axis, the shift along it is dropped (torchvision's rule). Refuses C×H×W and F."""
    shape = ins[0]
    if not channels_last(shape) or len(shape) != 3:
        raise ShapeError("window_attention needs a channels-last H×W×C input", expected="H×W×C",
                         found=fmt_shape(shape), hint="put `permute([0, 2, 3, 1])` before it (Swin's patch "
                                                      "embedding does, after its conv)")
    c = shape[2]
    if c % a.heads:
        raise ShapeError(f"window_attention with {a.heads} heads needs C divisible by {a.heads}",
                         expected=f"C a multiple of {a.heads}", found=f"C = {c}")
    if a.shift[0] >= a.window[0] or a.shift[1] >= a.window[1]:
        raise ShapeError("window_attention's shift must be smaller than its window",
                         expected=f"shift below {fmt_pair(a.window)}", found=f"shift {fmt_pair(a.shift)}",
                         hint="Swin shifts every other block by half the window")
    return shape


def _windows(a: WindowAttentionAttrs, shape: Shape) -> int:
    """The number of windows over the map padded to a multiple of the window."""
    return -(-shape[0] // a.window[0]) * -(-shape[1] // a.window[1])


def _table(a: WindowAttentionAttrs) -> int:
    """The number of relative offsets between two positions of a window: (2·wh − 1)(2·ww − 1)."""
    return (2 * a.window[0] - 1) * (2 * a.window[1] - 1)


def _weights(a: WindowAttentionAttrs, ins: list[Shape], out: Shape) -> int:
    c = ins[0][2]
    bias = a.heads + CPB_HIDDEN * (2 + a.heads) if a.v2 else _table(a) * a.heads
    return 4 * c * c + bias


def _params(a: WindowAttentionAttrs, ins: list[Shape], out: Shape) -> int:
    c = ins[0][2]
    return _weights(a, ins, out) + (3 * c if a.qkv_bias else 0) + (c if a.proj_bias else 0) + (
        CPB_HIDDEN if a.v2 else 0)


def _macs(a: WindowAttentionAttrs, ins: list[Shape], out: Shape) -> int:
    """qkv (n·C·3C) and proj (n·C·C), QKᵀ and AV (n·n·C each) in every window of n positions; V2's bias MLP
    once per forward, over the table of relative offsets."""
    c, n = ins[0][2], a.window[0] * a.window[1]
    per_window = 4 * n * c * c + 2 * n * n * c
    cpb = _table(a) * CPB_HIDDEN * (2 + a.heads) if a.v2 else 0
    return _windows(a, ins[0]) * per_window + cpb


def _emit(a: WindowAttentionAttrs, ins: list[Shape]):
    from .window_modules import ShiftedWindowAttention

    return ShiftedWindowAttention(ins[0][2], a.heads, a.window, a.shift, v2=a.v2, qkv_bias=a.qkv_bias,
                                  proj_bias=a.proj_bias)


def _source(a: SourceArgs) -> SourceForm:
    args = [a.in_ch(), required(a, "heads"), required(a, "window")]
    args += [f"{name}={text}" for name in ("shift", "v2", "qkv_bias", "proj_bias") if (text := a.arg(name))]
    return SourceForm(module=call("ShiftedWindowAttention", args),
                      helpers=(helper("ShiftedWindowAttention", "window_modules.py"),))


def _label(a: WindowAttentionAttrs) -> str:
    shift = f", shift {fmt_pair(a.shift)}" if any(a.shift) else ""
    return f"{'cosine ' if a.v2 else ''}window attn {fmt_pair(a.window)}, {a.heads} heads{shift}"


register(Op(
    name="window_attention", attrs=WindowAttentionAttrs, infer=_infer, emit=_emit, source=_source,
    params=_params, weights=_weights, macs=_macs, kind="attention", label=_label,
    buffer_bytes=lambda a, ins: 8 * (a.window[0] * a.window[1]) ** 2 + (4 * 2 * _table(a) if a.v2 else 0),
    torch_modules=("ShiftedWindowAttention", "ShiftedWindowAttentionV2"),
    doc="Swin Transformer's (shifted) window multi-head self-attention over a channels-last H×W×C map, as "
        "torchvision's ShiftedWindowAttention: the map is padded to a multiple of `window`, rolled by `shift` "
        "(0 in even blocks, half the window in odd ones), and each window attends to itself with a learned "
        "relative position bias; positions the roll brought together from opposite edges are masked apart. "
        "Its `qkv` and `proj` linear layers, the bias table and its index buffer are keyed as torchvision's. "
        "`v2=true` is Swin V2's form (ShiftedWindowAttentionV2): cosine attention with a learned per-head "
        "`logit_scale`, the bias from a 2→512→heads MLP (`cpb_mlp`) over log-spaced relative coordinates "
        "(buffer `relative_coords_table`), the key bias held at zero; its MACs count that MLP per image, "
        "as torch's FLOP counter does at batch 1 (it runs once per forward, whatever the batch). Computed with "
        "`F.scaled_dot_product_attention`, the bias and mask as its `attn_mask`.",
))
