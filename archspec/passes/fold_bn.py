"""Fold a batch norm into the convolution or linear layer that feeds it."""

from __future__ import annotations

from typing import Any

from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from .common import absorb, bypass, module, set_module, sole_user

_PAIRS = ((nn.Conv2d, nn.BatchNorm2d, fuse_conv_bn_eval), (nn.Linear, nn.BatchNorm1d, fuse_linear_bn_eval))


def fold_bn(gm: fx.GraphModule) -> int:
    """conv → bn becomes one conv with w' = w·γ/σ and b' = (b − μ)·γ/σ + β (σ = √(var + eps)).

    Exact up to float rounding (one multiply folded into the weights): the conv's output must feed
    the batch norm alone, and the batch norm must keep running statistics.
    """
    folded = 0
    nodes: list[fx.Node] = list(gm.graph.nodes)
    for bn_node in nodes:
        bn: Any = module(gm, bn_node)
        src = bn_node.args[0] if bn_node.op == "call_module" else None
        if not isinstance(src, fx.Node):
            continue
        layer: Any = module(gm, src)
        fuse: Any = next((f for lt, bt, f in _PAIRS if isinstance(layer, lt) and type(bn) is bt), None)
        if fuse is None or sole_user(src) is not bn_node or bn.running_mean is None:
            continue
        set_module(gm, str(src.target), fuse(layer.eval(), bn.eval()))
        absorb(src, bn_node)
        bypass(gm.graph, bn_node, src)
        folded += 1
    return folded
