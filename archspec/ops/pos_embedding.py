"""`pos_embedding(std)`: a learned position embedding added to a token sequence (ViT's `pos_embedding`).

A `ParamCall`, as `layer_scale`: the 1×L×D tensor is owned by the enclosing scope
under the node's name, so `encoder/pos_embedding` has the key `encoder.pos_embedding`.
L is the input's: a spec built for another image size gets an embedding of that length.
"""

from __future__ import annotations

import operator
from typing import Annotated

from pydantic import Field

from .class_token import need_tokens
from .registry import Attrs, Op, ParamCall, Shape, SourceArgs, SourceForm, register


class PosEmbeddingAttrs(Attrs):
    std: Annotated[float, Field(ge=0)] = 0.02


def _infer(a: PosEmbeddingAttrs, ins: list[Shape]) -> Shape:
    """L×D → L×D, plus a learned 1×L×D tensor."""
    need_tokens("pos_embedding", ins[0])
    return ins[0]


def _emit(a: PosEmbeddingAttrs, ins: list[Shape]) -> ParamCall:
    import torch
    from torch import nn

    return ParamCall(nn.Parameter(torch.empty(1, *ins[0]).normal_(std=a.std)), operator.add)


def _source(a: SourceArgs) -> SourceForm:
    std = a.arg("std") or repr(PosEmbeddingAttrs().std)
    return SourceForm(param=f"nn.Parameter(torch.empty(1, {a.ins[0][0]}, {a.in_ch()}).normal_(std={std}))",
                      call=lambda xs: f"{xs[0]} + {xs[1]}")


register(Op(
    name="pos_embedding", attrs=PosEmbeddingAttrs, infer=_infer, emit=_emit, source=_source, kind="tokens",
    params=lambda a, ins, out: ins[0][0] * ins[0][1],
    label=lambda a: "pos embedding",
    doc="Adds a learned position embedding, a 1×L×D tensor drawn from N(0, `std`²), to a token sequence. The "
        "tensor belongs to the enclosing scope, named after the node (`encoder/pos_embedding` has torchvision's "
        "key `encoder.pos_embedding`); L is the input's, so it follows the image size the spec is built for.",
))
