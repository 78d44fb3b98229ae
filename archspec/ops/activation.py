"""Element-wise activations: `relu`, `relu6`, `gelu`, `silu`, `sigmoid`, `tanh`, `hardswish`,
`hardsigmoid`, `leaky_relu(slope)`, `act(kind)` and `identity`."""

from __future__ import annotations

from typing import Literal

from .common import same_shape
from .registry import (
    IDENTITY,
    SOURCE_IDENTITY,
    Attrs,
    FunctionCall,
    NoAttrs,
    Op,
    Shape,
    SourceArgs,
    SourceForm,
    register,
)
from .source import call

_TABLE: dict[str, tuple[str, str, str]] = {
    # kind: (the function the torch backend calls, the call the Python source writes, the nn module)
    "relu": ("torch.relu", "F.relu", "ReLU"),
    "relu6": ("F.relu6", "F.relu6", "ReLU6"),
    "gelu": ("F.gelu", "F.gelu", "GELU"),
    "silu": ("F.silu", "F.silu", "SiLU"),
    "sigmoid": ("torch.sigmoid", "torch.sigmoid", "Sigmoid"),
    "tanh": ("torch.tanh", "torch.tanh", "Tanh"),
    "hardswish": ("F.hardswish", "F.hardswish", "Hardswish"),
    "hardsigmoid": ("F.hardsigmoid", "F.hardsigmoid", "Hardsigmoid"),
    "identity": ("", "", "Identity"),
}
KINDS = tuple(_TABLE)


def _function(kind: str) -> FunctionCall:
    if kind == "identity":
        return IDENTITY
    import torch
    import torch.nn.functional as F

    owner, name = _TABLE[kind][0].split(".")
    return FunctionCall(getattr(torch if owner == "torch" else F, name))


def _kind_source(kind: str) -> SourceForm:
    if kind == "identity":
        return SOURCE_IDENTITY
    fn = _TABLE[kind][1]
    return SourceForm(module=f"nn.{_TABLE[kind][2]}()", call=lambda xs: f"{fn}({xs[0]})")


ACTIVATION_HELPER = '''def activation(kind: str) -> nn.Module:
    """The activation named `kind` (the spec's `act(kind)`)."""
    modules = {{
        {table},
    }}
    return modules[kind]()'''.format(table=",\n        ".join(f'"{k}": nn.{m}' for k, (_, _, m) in _TABLE.items()))


def _register_kind(kind: str) -> None:
    def label(a: NoAttrs) -> str:
        return kind

    def emit(a: NoAttrs, ins: list[Shape]) -> FunctionCall:
        return _function(kind)

    register(Op(name=kind, attrs=NoAttrs, infer=same_shape, kind="act", label=label, emit=emit,
                source=lambda a: _kind_source(kind), same_as=("act", {"kind": kind}),
                torch_modules=(_TABLE[kind][2],) if kind != "identity" else (),
                doc="Passes its input through unchanged." if kind == "identity" else f"Element-wise {kind}."))


for _kind in KINDS:
    _register_kind(_kind)


class ActAttrs(Attrs):
    kind: Literal[KINDS]  # type: ignore[valid-type]


def _act_source(a: SourceArgs) -> SourceForm:
    if a.fixed("kind"):
        return _kind_source(a.value("kind"))
    return SourceForm(module=f"activation({a.arg('kind')})", helpers=(ACTIVATION_HELPER,))


register(Op(
    name="act", attrs=ActAttrs, infer=same_shape, kind="act", label=lambda a: a.kind,
    emit=lambda a, ins: _function(a.kind), source=_act_source,
    doc="An activation chosen by name, for blocks that take it as a parameter: "
        f"`act($act)` with one of {', '.join(KINDS)}.",
))


class LeakyAttrs(Attrs):
    slope: float = 0.01


def _leaky_emit(a: LeakyAttrs, ins: list[Shape]) -> FunctionCall:
    import torch.nn.functional as F

    return FunctionCall(F.leaky_relu, {"negative_slope": a.slope})


def _leaky_source(a: SourceArgs) -> SourceForm:
    slope = a.arg("slope")
    extra = [slope] if slope is not None else []
    return SourceForm(module=call("nn.LeakyReLU", extra), call=lambda xs: call("F.leaky_relu", xs[:1] + extra))


register(Op(
    name="leaky_relu", attrs=LeakyAttrs, infer=same_shape, kind="act", emit=_leaky_emit, source=_leaky_source,
    torch_modules=("LeakyReLU",),
    label=lambda a: f"leaky_relu {a.slope:g}", doc="Leaky ReLU with negative slope `slope`.",
))
