"""Nodes that compute nothing at inference: dropout, stochastic depth and identities."""

from __future__ import annotations

from torch import fx, nn

from ..ops.modules import DropPath
from .common import bypass, calls


def remove_dropout(gm: fx.GraphModule) -> int:
    """Drop every dropout, stochastic depth and identity module: at inference each returns its input unchanged
    (exact)."""
    removed = 0
    for node in list(gm.graph.nodes):
        if calls(gm, node, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity, DropPath):
            bypass(gm.graph, node, node.args[0])  # type: ignore[arg-type]
            removed += 1
    return removed
