"""The torch module of `cbam`: channel attention, then spatial attention (Woo et al. 2018, Fig. 1-2).

Channel attention: a shared two-layer MLP (1×1 convolutions C → hidden → C, ReLU between) applied to
the average- and the max-pooled C×1×1 descriptors; their sum through a sigmoid scales each channel.
Spatial attention: the channel-wise mean and max (2×H×W, in that order, as the paper's Eq. 3) go
through a k×k convolution to one channel and batch norm; its sigmoid scales each position.
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelGate(nn.Module):
    """N×C×H×W → N×C×H×W, each channel scaled by σ(MLP(avgpool(x)) + MLP(maxpool(x)))."""

    def __init__(self, channels: int, hidden: int, bias: bool):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=bias)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=bias)

    def mlp(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(pooled)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(x.mean((2, 3), keepdim=True))
        peak = self.mlp(x.amax((2, 3), keepdim=True))
        return x * torch.sigmoid(avg + peak)


class SpatialGate(nn.Module):
    """N×C×H×W → N×C×H×W, each position scaled by σ(bn(conv_k×k([mean_c(x); max_c(x)])))."""

    def __init__(self, k: int):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.bn(self.conv(pooled)))


class CBAM(nn.Module):
    """Channel attention followed by spatial attention; the output has the input's shape."""

    def __init__(self, channels: int, hidden: int, k: int, bias: bool = False):
        super().__init__()
        self.channel = ChannelGate(channels, hidden, bias)
        self.spatial = SpatialGate(k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
