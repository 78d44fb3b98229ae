"""`class_token`: a learned token prepended to a sequence (ViT's `class_token`).

Like `layer_scale`, the op returns a `ParamCall`: its 1×1×D tensor belongs to the
module of the enclosing scope, under the node's own name, so a top-level node
`class_token` has torchvision's key `class_token`.
"""

from __future__ import annotations

from .common import fmt_shape
from .registry import NoAttrs, Op, ParamCall, Shape, ShapeError, SourceArgs, SourceForm, Tokens, register
from .source import helper


def need_tokens(name: str, shape: Shape) -> tuple[int, int]:
    """(L, D) of a token sequence; a located refusal of any other shape."""
    if not isinstance(shape, Tokens):
        raise ShapeError(f"{name} needs a token sequence L×D", expected="L×D (tokens)", found=fmt_shape(shape),
                         hint="turn a patch embedding's D×h×w into tokens with `to_tokens` first")
    return shape[0], shape[1]


def _infer(a: NoAttrs, ins: list[Shape]) -> Shape:
    """L×D → (L+1)×D: the learned token first, then the input's."""
    length, d = need_tokens("class_token", ins[0])
    return Tokens((length + 1, d))


def _emit(a: NoAttrs, ins: list[Shape]) -> ParamCall:
    import torch
    from torch import nn

    from .modules import prepend_token

    return ParamCall(nn.Parameter(torch.zeros(1, 1, ins[0][-1])), prepend_token)


def _source(a: SourceArgs) -> SourceForm:
    return SourceForm(param=f"nn.Parameter(torch.zeros(1, 1, {a.in_ch()}))",
                      call=lambda xs: f"prepend_token({xs[0]}, {xs[1]})", helpers=(helper("prepend_token"),))


register(Op(
    name="class_token", attrs=NoAttrs, infer=_infer, emit=_emit, source=_source, kind="tokens",
    params=lambda a, ins, out: ins[0][-1],
    label=lambda a: "class token",
    doc="Prepends a learned token (a 1×1×D tensor, zeros at first) to every sequence: the class token of a "
        "Vision Transformer, read at the end by `select_token(0)`. The tensor belongs to the enclosing scope, "
        "named after the node: a top-level `class_token: class_token` has torchvision's key `class_token`.",
))
