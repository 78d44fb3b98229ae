"""On CPU: each convolution becomes one oneDNN call with pre-packed weights, and the element-wise work after it
(its activation; a residual add and the activation after that) runs inside the call as oneDNN post-ops."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from .common import Repacked, absorb, bypass, device_of, example_input, module, set_module, sole_user


@dataclass(frozen=True)
class PostOp:
    """An element-wise function oneDNN applies inside a convolution: its name there, scalars and algorithm."""

    attr: str
    scalars: tuple[float, ...] = ()
    algorithm: str = ""

    def apply(self, y: torch.Tensor) -> torch.Tensor:
        """The same function in plain torch ops (what a reference form, traced by torch.export, computes)."""
        if self.attr == "hardtanh":
            return torch.clamp(y, *self.scalars)
        if self.attr == "gelu":
            return F.gelu(y, approximate=self.algorithm or "none")
        if self.attr == "leaky_relu":
            return F.leaky_relu(y, self.scalars[0])
        functions = {"relu": torch.relu, "swish": F.silu, "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid,
                     "sigmoid": torch.sigmoid, "tanh": torch.tanh, "none": lambda v: v}
        return functions[self.attr](y)  # type: ignore[no-any-return,operator]


def _gelu(approximate: str = "none") -> PostOp:
    return PostOp("gelu", algorithm=approximate)


def _hardtanh(low: float = -1.0, high: float = 1.0) -> PostOp:
    return PostOp("hardtanh", (float(low), float(high)))


_FUNCTIONS: dict[Any, Any] = {
    # a torch function → how its call's arguments (after the input) and keywords make a post-op
    torch.relu: lambda *a, **k: PostOp("relu"),
    F.relu: lambda *a, **k: PostOp("relu"),
    F.relu6: lambda *a, **k: PostOp("hardtanh", (0.0, 6.0)),
    F.hardtanh: lambda low=-1.0, high=1.0, *a, min_val=None, max_val=None, **k: _hardtanh(
        low if min_val is None else min_val, high if max_val is None else max_val),
    F.silu: lambda *a, **k: PostOp("swish"),
    F.hardswish: lambda *a, **k: PostOp("hardswish"),
    F.hardsigmoid: lambda *a, **k: PostOp("hardsigmoid"),
    torch.sigmoid: lambda *a, **k: PostOp("sigmoid"),
    torch.tanh: lambda *a, **k: PostOp("tanh"),
    F.gelu: lambda *a, approximate="none", **k: _gelu(approximate),
    F.leaky_relu: lambda slope=0.01, *a, negative_slope=None, **k: PostOp(
        "leaky_relu", (float(slope if negative_slope is None else negative_slope),)),
}
_MODULES: dict[type, Any] = {
    nn.ReLU: lambda m: PostOp("relu"),
    nn.ReLU6: lambda m: PostOp("hardtanh", (0.0, 6.0)),
    nn.Hardtanh: lambda m: _hardtanh(m.min_val, m.max_val),
    nn.SiLU: lambda m: PostOp("swish"),
    nn.Hardswish: lambda m: PostOp("hardswish"),
    nn.Hardsigmoid: lambda m: PostOp("hardsigmoid"),
    nn.Sigmoid: lambda m: PostOp("sigmoid"),
    nn.Tanh: lambda m: PostOp("tanh"),
    nn.GELU: lambda m: _gelu(m.approximate),
    nn.LeakyReLU: lambda m: PostOp("leaky_relu", (float(m.negative_slope),)),
}
"""The element-wise functions oneDNN can run inside a convolution (torch's own inductor fuses the same set).
These are facts of the oneDNN kernel, keyed by the torch function or module the emitted graph calls."""


def post_op(gm: fx.GraphModule, node: fx.Node) -> PostOp | None:
    """The oneDNN post-op that computes `node` from its (single) input, if there is one."""
    if node.op == "call_function" and node.target in _FUNCTIONS:
        return _FUNCTIONS[node.target](*node.args[1:], **node.kwargs)  # type: ignore[no-any-return]
    found = module(gm, node)
    return _MODULES[type(found)](found) if type(found) in _MODULES else None


def residual_add(node: fx.Node, conv: fx.Node) -> fx.Node | None:
    """If `node` is `conv + other` (in either order, no scaling), the other operand."""
    if node.op != "call_function" or node.target not in (operator.add, torch.add) or len(node.args) != 2:
        return None
    if node.kwargs and set(node.kwargs) != {"alpha"} or node.kwargs.get("alpha", 1) != 1:
        return None
    a, b = node.args
    other = b if a is conv else a
    return other if isinstance(other, fx.Node) and other is not conv else None


class PackedConv2d(Repacked, nn.Module):
    """A 2-D convolution through oneDNN, its weight reordered once into oneDNN's blocked layout.

    `post_op` is the element-wise function applied inside the call ("none" when there is none). With
    `residual`, the call takes a second tensor of the output's shape and adds it before `post_op`
    (conv → add → activation as one call: the residual joins of ResNet, MobileNet, EfficientNet).
    The packed weight is opaque (its strides mean nothing to other ops); use it only here.
    """

    def __init__(self, conv: nn.Conv2d, input_shape: torch.Size, post: PostOp | None = None,
                 residual: bool = False):
        super().__init__()
        self.padding: list[int] = list(conv.padding)  # type: ignore[arg-type]
        self.stride, self.dilation, self.groups = list(conv.stride), list(conv.dilation), conv.groups
        self.attr = post.attr if post else "none"
        self.scalars = list(post.scalars) if post else []
        self.algorithm = post.algorithm if post else ""
        self.residual = residual
        self.out_channels = conv.out_channels
        self.input_shape = list(input_shape)
        self.register_buffer("weight", conv.weight.detach().contiguous())
        self.register_buffer("bias", conv.bias.detach().clone() if conv.bias is not None else None)
        self._pack()

    def _pack(self) -> None:
        """Reorder the weight for oneDNN, kept beside the plain weight (see `Repacked`)."""
        self.packed = torch.ops.mkldnn._reorder_convolution_weight(
            self.weight, self.padding, self.stride, self.dilation, self.groups, self.input_shape)

    def forward(self, x: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        if other is None:
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.packed, self.bias, self.padding, self.stride, self.dilation, self.groups,
                self.attr, self.scalars, self.algorithm)
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, other, self.packed, self.bias, self.padding, self.stride, self.dilation, self.groups, "add", 1.0,
            None if self.attr == "none" else self.attr, self.scalars, self.algorithm)

    def extra_repr(self) -> str:
        post = self.attr + (f"{tuple(self.scalars)}" if self.scalars else "") + (
            f"[{self.algorithm}]" if self.algorithm else "")
        return (f"out={self.out_channels}, stride={tuple(self.stride)}, padding={tuple(self.padding)}, "
                f"{'residual add, ' if self.residual else ''}post_op={post}")


def usable(gm: nn.Module) -> bool:
    """oneDNN takes the convolutions: the module is on the CPU, in float32, and torch was built with it."""
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return False
    weight = next((m.weight for m in gm.modules() if isinstance(m, nn.Conv2d)), None)
    return weight is not None and device_of(gm).type == "cpu" and weight.dtype == torch.float32


def _shape(node: Any) -> torch.Size | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return getattr(meta, "shape", None)


def fuse_conv(gm: fx.GraphModule) -> int:
    """Each conv becomes one oneDNN call with its weight packed once, and what follows it is fused in:

    - conv → activation (ReLU, ReLU6, SiLU, Hardswish, Hardsigmoid, Sigmoid, Tanh, GELU, LeakyReLU,
      Hardtanh): the activation as a post-op;
    - conv → add → [activation], where the conv's output is read only by the add and the other operand
      has the conv's output shape (a residual join): the add, and the activation after it, as post-ops.

    Exact up to float rounding (the same arithmetic, in oneDNN's order); a no-op off the CPU or outside
    float32. Every other conv is packed too (post-op "none"). Weights are packed for the batch size
    `optimize` was given; other batch sizes run as well, with the same outputs. Returns the number of
    convs packed.
    """
    if not usable(gm):
        return 0
    gm.recompile()  # the graph may have changed since the code was generated
    with torch.inference_mode():
        ShapeProp(gm).propagate(example_input(gm))
    packed = 0
    for node in list(gm.graph.nodes):
        conv = module(gm, node)
        if (type(conv) is not nn.Conv2d or conv.padding_mode != "zeros" or isinstance(conv.padding, str)
                or _shape(node.args[0]) is None):
            continue
        tail, other = node, None
        user = sole_user(node)
        if user is not None and (found := residual_add(user, node)) is not None and _shape(found) == _shape(node):
            tail, other = user, found
            user = sole_user(user)
        post = post_op(gm, user) if user is not None else None
        set_module(gm, str(node.target), PackedConv2d(conv, _shape(node.args[0]), post,  # type: ignore[arg-type]
                                                      residual=other is not None))
        if other is not None:
            tail.prepend(node)  # the conv now runs where the add ran, once both operands exist
            node.args = (node.args[0], other)
            absorb(node, tail)
            bypass(gm.graph, tail, node)
        if post is not None:
            absorb(node, user)  # type: ignore[arg-type]
            bypass(gm.graph, user, node)  # type: ignore[arg-type]
        packed += 1
    return packed
