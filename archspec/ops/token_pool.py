"""From a token sequence to one vector: `select_token(index)` (ViT's `x[:, 0]`) and `mean_tokens`."""

from __future__ import annotations

from .class_token import need_tokens
from .common import NonNeg
from .registry import Attrs, FunctionCall, NoAttrs, Op, Shape, ShapeError, SourceArgs, SourceForm, register


class SelectAttrs(Attrs):
    index: NonNeg = 0


def _select_infer(a: SelectAttrs, ins: list[Shape]) -> Shape:
    """L×D → D, token `index` (0: the class token). Refuses an index past the last token."""
    length, d = need_tokens("select_token", ins[0])
    if a.index >= length:
        raise ShapeError(f"select_token({a.index}) of {length} tokens", expected=f"index < {length}",
                         found=f"index {a.index}")
    return (d,)


def _select_emit(a: SelectAttrs, ins: list[Shape]) -> FunctionCall:
    import torch

    return FunctionCall(torch.select, args=(1, a.index))


def _select_source(a: SourceArgs) -> SourceForm:
    index = a.arg("index") or "0"
    return SourceForm(call=lambda xs: f"{xs[0]}[:, {index}]")


register(Op(
    name="select_token", attrs=SelectAttrs, infer=_select_infer, emit=_select_emit, source=_select_source,
    kind="tokens", label=lambda a: f"token {a.index}",
    doc="Takes one token of a sequence, N×L×D → N×D: `select_token(0)` reads the class token, as a Vision "
        "Transformer's head does.",
))


def _mean_infer(a: NoAttrs, ins: list[Shape]) -> Shape:
    """L×D → D, the mean over the tokens."""
    return (need_tokens("mean_tokens", ins[0])[1],)


def _mean_emit(a: NoAttrs, ins: list[Shape]) -> FunctionCall:
    import torch

    return FunctionCall(torch.mean, {"dim": 1})


register(Op(
    name="mean_tokens", attrs=NoAttrs, infer=_mean_infer, emit=_mean_emit, kind="tokens",
    source=lambda a: SourceForm(call=lambda xs: f"{xs[0]}.mean(1)"), label=lambda a: "mean of tokens",
    doc="Averages a sequence over its tokens, N×L×D → N×D (a transformer's head without a class token).",
))
