"""Fold a constant scale (Inception-ResNet's residual scaling) into the layer before it."""

from __future__ import annotations

import operator

import torch
from torch import fx, nn

from .common import absorb, bypass, module, sole_user


def fold_scale(gm: fx.GraphModule) -> int:
    """conv → ×f becomes one conv with w' = f·w and b' = f·b (also for linear layers).

    Exact up to float rounding; the layer's output must feed the multiplication alone.
    """
    folded = 0
    for node in list(gm.graph.nodes):
        if not (node.op == "call_function" and node.target is operator.mul and len(node.args) == 2):
            continue
        src, factor = node.args
        layer = module(gm, src) if isinstance(src, fx.Node) else None
        if not isinstance(layer, (nn.Conv2d, nn.Linear)) or not isinstance(factor, (int, float)):
            continue
        if sole_user(src) is not node:  # type: ignore[arg-type]
            continue
        with torch.no_grad():
            layer.weight.mul_(factor)
            if layer.bias is not None:
                layer.bias.mul_(factor)
        absorb(src, node)  # type: ignore[arg-type]
        bypass(gm.graph, node, src)  # type: ignore[arg-type]
        folded += 1
    return folded
