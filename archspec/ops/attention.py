"""`self_attention(heads, dropout, bias)`: multi-head self-attention over a token sequence (ViT's encoder).

The emitted module is `nn.MultiheadAttention` (batch first), called with the tokens
as query, key and value, so the parameters are torch's own and a torchvision ViT's
`...self_attention.in_proj_weight` loads as it is. `archspec.optimize` swaps it for a
module computing the same through `F.scaled_dot_product_attention`
(archspec/passes/attention.py).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field

from .class_token import need_tokens
from .common import Pos
from .registry import Attrs, Op, Shape, ShapeError, SourceArgs, SourceForm, register
from .source import ctor, helper, required


class AttentionAttrs(Attrs):
    heads: Pos = Field(validation_alias=AliasChoices("heads", "num_heads"))
    dropout: Annotated[float, Field(ge=0, le=1)] = 0.0
    bias: bool = True


def _infer(a: AttentionAttrs, ins: list[Shape]) -> Shape:
    """L×D → L×D. D must divide into `heads` heads of D / heads each."""
    _, d = need_tokens("self_attention", ins[0])
    if d % a.heads:
        raise ShapeError(f"self_attention cannot split width {d} into {a.heads} heads",
                         expected=f"a width divisible by {a.heads}", found=f"{d}",
                         hint=f"widths that {a.heads} heads split: {d - d % a.heads} or {d - d % a.heads + a.heads}")
    return ins[0]


def _params(a: AttentionAttrs, ins: list[Shape], out: Shape) -> int:
    """Q, K, V projections (3·D×D) and the output projection (D×D), with their biases."""
    d = ins[0][1]
    return 4 * d * d + (4 * d if a.bias else 0)


def _macs(a: AttentionAttrs, ins: list[Shape], out: Shape) -> int:
    """Q, K, V projections (3·L·D²), QKᵀ and the attention times V (L²·D each), output projection (L·D²)."""
    length, d = ins[0]
    return 4 * length * d * d + 2 * length * length * d


def _emit(a: AttentionAttrs, ins: list[Shape]):
    from .modules import SelfAttention

    return SelfAttention(ins[0][1], a.heads, dropout=a.dropout, bias=a.bias)


def _source(a: SourceArgs) -> SourceForm:
    return SourceForm(module=ctor("SelfAttention", a, [a.in_ch(), required(a, "heads")],
                                  {"dropout": "dropout", "bias": "bias"}),
                      helpers=(helper("SelfAttention"),))


register(Op(
    name="self_attention", attrs=AttentionAttrs, infer=_infer, emit=_emit, source=_source, kind="attention",
    params=_params, macs=_macs, weights=lambda a, ins, out: 4 * ins[0][1] ** 2,
    label=lambda a: f"self-attention, {a.heads} heads",
    torch_modules=("SelfAttention", "SDPAttention", "MultiheadAttention"),
    doc="Multi-head self-attention over a token sequence: Q, K and V are projections of the input (one "
        "`in_proj_weight` of 3·D×D), softmax(QKᵀ/√(D/heads))·V is computed per head, then projected back "
        "(`out_proj`). Dropout `dropout` on the attention weights in training. Emitted as torch's "
        "`nn.MultiheadAttention`, so torchvision's ViT weights load as they are.",
))
