"""Torch modules and functions that some ops emit and that torch itself lacks.

Imported only by emitters (it imports torch). The Python-source backend copies
a definition from this file into the files it writes, read as text by
`archspec.ops.source.helper`, so the archspec module and a generated file run
the same code. Each definition therefore uses only `torch`, `nn` and `F`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of N×C×H×W at each position; `weight` and `bias` have shape (C,)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class DropPath(nn.Module):
    """Stochastic depth per sample: in training, zero each sample's tensor with probability `p`
    and scale the kept ones by 1 / (1 - p); in eval, the identity."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * (mask / keep if keep > 0.0 else mask)


class Permute(nn.Module):
    """`x.permute(*dims)` as a module, for a place in an `nn.Sequential`."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of `groups` equal groups: N×(g·k)×H×W viewed as g×k, transposed to k×g."""
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)

