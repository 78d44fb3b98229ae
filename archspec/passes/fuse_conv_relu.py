"""On CPU: each convolution becomes one oneDNN call with pre-packed weights and its ReLU applied inside."""

from __future__ import annotations

import torch
from torch import fx, nn

from .common import absorb, bypass, conv_input_shapes, device_of, example_input, is_relu, set_module, sole_user


class PackedConv2d(nn.Module):
    """A 2-D convolution through oneDNN, its weight reordered once into oneDNN's blocked layout.

    `attr` is "relu" when the ReLU after the conv runs inside it (a oneDNN post-op), else "none".
    The packed weight is opaque (its strides mean nothing to other ops); use it only here.
    """

    def __init__(self, conv: nn.Conv2d, input_shape: torch.Size, relu: bool):
        super().__init__()
        self.padding: list[int] = list(conv.padding)  # type: ignore[arg-type]
        self.stride, self.dilation, self.groups = list(conv.stride), list(conv.dilation), conv.groups
        self.attr = "relu" if relu else "none"
        self.out_channels = conv.out_channels
        self.input_shape = list(input_shape)
        self.register_buffer("weight", conv.weight.detach().contiguous())
        self.register_buffer("bias", conv.bias.detach().clone() if conv.bias is not None else None)
        self._pack()

    def _pack(self) -> None:
        """Reorder the weight for oneDNN. The result is opaque (no storage torch can save), so it is kept
        beside the plain weight, left out when pickling and made again when unpickling."""
        self.packed = torch.ops.mkldnn._reorder_convolution_weight(
            self.weight, self.padding, self.stride, self.dilation, self.groups, self.input_shape)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("packed", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pack()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._convolution_pointwise(x, self.packed, self.bias, self.padding, self.stride,
                                                       self.dilation, self.groups, self.attr, [], "")

    def extra_repr(self) -> str:
        return (f"out={self.out_channels}, stride={tuple(self.stride)}, padding={tuple(self.padding)}, "
                f"post_op={self.attr}")


def usable(gm: nn.Module) -> bool:
    """oneDNN takes the convolutions: the module is on the CPU, in float32, and torch was built with it."""
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return False
    weight = next((m.weight for m in gm.modules() if isinstance(m, nn.Conv2d)), None)
    return weight is not None and device_of(gm).type == "cpu" and weight.dtype == torch.float32


def fuse_conv_relu(gm: fx.GraphModule) -> int:
    """conv → relu becomes one oneDNN convolution with the ReLU as a post-op, its weight packed once.

    Exact up to float rounding (the same arithmetic, in oneDNN's order); a no-op off the CPU or
    outside float32. Every other conv is packed too (post-op "none"). Weights are packed for the
    batch size `optimize` was given; other batch sizes run as well, with the same outputs.
    Returns the number of convs packed.
    """
    if not usable(gm):
        return 0
    shapes = conv_input_shapes(gm, example_input(gm))
    packed = 0
    for node in list(gm.graph.nodes):
        conv = gm.get_submodule(str(node.target)) if node.op == "call_module" else None
        if (type(conv) is not nn.Conv2d or conv.padding_mode != "zeros" or isinstance(conv.padding, str)
                or str(node.target) not in shapes):
            continue
        relu = sole_user(node)
        fuse = relu is not None and is_relu(gm, relu)
        set_module(gm, str(node.target), PackedConv2d(conv, shapes[str(node.target)], fuse))
        if fuse:
            absorb(node, relu)  # type: ignore[arg-type]
            bypass(gm.graph, relu, node)  # type: ignore[arg-type]
        packed += 1
    return packed
