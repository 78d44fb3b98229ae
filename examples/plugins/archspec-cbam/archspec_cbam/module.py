"""The torch module of `cbam`: channel attention, then spatial attention (Woo et al. 2018, Fig. 1-2).

One class using only `torch` and `nn`, so that `-o .py` can copy its source into the files it writes.
"""

from __future__ import annotations

import torch
from torch import nn


class CBAM(nn.Module):
    """N×C×H×W → N×C×H×W: x scaled per channel, then per position, by attention computed from x.

    Channel attention: a shared MLP (1×1 convolutions C → hidden → C, ReLU between; hidden is
    C / reduction rounded, at least 1) on the average- and the max-pooled C×1×1 descriptors, their
    sum through a sigmoid. Spatial attention: the channel-wise mean and max (2×H×W, in that order,
    as the paper's Eq. 3) through a k×k convolution to one channel and batch norm, then a sigmoid.
    """

    def __init__(self, channels: int, reduction: int = 16, k: int = 7, bias: bool = False):
        super().__init__()
        hidden = max(1, (2 * channels + reduction) // (2 * reduction))  # the rounding of archspec_cbam.ops.hidden
        self.channel = nn.ModuleDict({"fc1": nn.Conv2d(channels, hidden, 1, bias=bias),
                                      "fc2": nn.Conv2d(hidden, channels, 1, bias=bias)})
        self.spatial = nn.ModuleDict({"conv": nn.Conv2d(2, 1, k, padding=k // 2, bias=False),
                                      "bn": nn.BatchNorm2d(1)})

    def mlp(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.channel["fc2"](torch.relu(self.channel["fc1"](pooled)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True)))
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial["bn"](self.spatial["conv"](pooled)))
