"""Element-wise activations: `relu`, `relu6`, `gelu`, `silu`, `sigmoid`, `tanh`,
`hardswish`, `leaky_relu(slope)`, `act(kind)` and `identity`."""

from __future__ import annotations

from typing import Literal

from .common import same_shape
from .registry import IDENTITY, Attrs, FunctionCall, NoAttrs, Op, Shape, register

KINDS = ("relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "hardswish", "identity")


def _function(kind: str) -> FunctionCall:
    if kind == "identity":
        return IDENTITY
    import torch
    import torch.nn.functional as F

    return FunctionCall({"relu": torch.relu, "relu6": F.relu6, "gelu": F.gelu, "silu": F.silu,
                         "sigmoid": torch.sigmoid, "tanh": torch.tanh, "hardswish": F.hardswish}[kind])


def _register_kind(kind: str) -> None:
    def label(a: NoAttrs) -> str:
        return kind

    def emit(a: NoAttrs, ins: list[Shape]) -> FunctionCall:
        return _function(kind)

    register(Op(name=kind, attrs=NoAttrs, infer=same_shape, kind="act", label=label, emit=emit,
                doc="Passes its input through unchanged." if kind == "identity" else f"Element-wise {kind}."))


for _kind in KINDS:
    _register_kind(_kind)


class ActAttrs(Attrs):
    kind: Literal[KINDS]  # type: ignore[valid-type]


register(Op(
    name="act", attrs=ActAttrs, infer=same_shape, kind="act", label=lambda a: a.kind,
    emit=lambda a, ins: _function(a.kind),
    doc="An activation chosen by name, for blocks that take it as a parameter: "
        f"`act($act)` with one of {', '.join(KINDS)}.",
))


class LeakyAttrs(Attrs):
    slope: float = 0.01


def _leaky_emit(a: LeakyAttrs, ins: list[Shape]) -> FunctionCall:
    import torch.nn.functional as F

    return FunctionCall(F.leaky_relu, {"negative_slope": a.slope})


register(Op(
    name="leaky_relu", attrs=LeakyAttrs, infer=same_shape, kind="act", emit=_leaky_emit,
    label=lambda a: f"leaky_relu {a.slope:g}", doc="Leaky ReLU with negative slope `slope`.",
))
