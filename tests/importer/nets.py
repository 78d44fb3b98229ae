"""Networks written by hand for the importer's tests: a forward of its own, and forwards it must refuse."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBN(nn.Module):
    def __init__(self, cin: int, cout: int, k: int = 3, s: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class Branchy(nn.Module):
    """Two branches concatenated, projected back to the input width and added to the input."""

    def __init__(self, cin: int, a: int, b: int):
        super().__init__()
        self.left = ConvBN(cin, a, 1)
        self.right = nn.Sequential(ConvBN(cin, b, 1), ConvBN(b, b, 3))
        self.proj = nn.Conv2d(a + b, cin, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.left(x), self.right(x)], 1)
        return x + self.proj(y)


class TinyNet(nn.Module):
    """Branches, residuals, one block class reused with different widths, functional pooling."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = ConvBN(3, 16, 3, 2)
        self.block1 = Branchy(16, 8, 16)
        self.block2 = Branchy(16, 12, 4)
        self.down = ConvBN(16, 32, 3, 2)
        self.block3 = Branchy(32, 16, 16)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(self.stem(x)))
        x = self.block3(self.down(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


class Gate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # GATE-LINE: control flow on a tensor's value
            return x
        return -x


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.gate = Gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.conv(x))


class Upsample(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 32, 1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))  # SHUFFLE-LINE


class WithUnknownOp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3)
        self.up = Upsample()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.stem(x))


class WithUnusedWeights(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.spare = nn.Linear(8, 8)  # never called

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Residual(nn.Module):
    """A conv on a residual branch behind torchvision's StochasticDepth (a whole-batch one for `mode="batch"`)."""

    def __init__(self, mode: str = "row"):
        super().__init__()
        from torchvision.ops import StochasticDepth

        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.drop = StochasticDepth(0.25, mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.conv(x))


class Scaled(nn.Module):
    """A conv whose output is multiplied by a learned tensor of the module itself (ConvNeXt's layer scale)."""

    def __init__(self, shape: tuple[int, ...] = (8, 1, 1)):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.gamma = nn.Parameter(torch.full(shape, 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gamma * self.conv(x)  # GAMMA-LINE


class DenseLayer(nn.Module):
    """Reads the list of every earlier output, concatenated; gives `growth` new channels."""

    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, growth, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.conv(torch.relu(self.bn(torch.cat(features, 1))))


class DenseBlock(nn.ModuleList):
    """Each layer reads all earlier outputs; the block gives them all, concatenated."""

    def __init__(self, width: int, growth: int, layers: int):
        super().__init__(DenseLayer(width + k * growth, growth) for k in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self:
            features.append(layer(features))
        return torch.cat(features, 1)


class Dense(nn.Module):
    def __init__(self, width: int = 8, growth: int = 4, layers: int = 3):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.block = DenseBlock(width, growth, layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.stem(x))
