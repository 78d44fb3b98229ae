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


class Encoder(nn.Module):
    """Pre-norm attention and MLP, checking its input's rank as transformers do."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch._assert(x.dim() == 3, f"expected N×L×D, got {x.shape}")
        y = self.norm(x)
        y, _ = self.attn(y, y, y, need_weights=False)
        x = x + y
        return x + self.mlp(x)


class TinyViT(nn.Module):
    """A forward that reads its input's shape (`n, c, h, w = x.shape`), asserts on it, cuts the image into
    tokens by hand, prepends an expanded class token and reads it back with `x[:, 0]`."""

    def __init__(self, size: int = 16, patch: int = 4, dim: int = 24, heads: int = 3):
        super().__init__()
        self.size, self.dim = size, dim
        self.patch = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, (size // patch) ** 2 + 1, dim))
        self.blocks = nn.Sequential(Encoder(dim, heads), Encoder(dim, heads))
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        torch._assert(h == self.size and w == self.size, "wrong image size")  # SIZE-LINE
        x = self.patch(x)
        x = x.reshape(n, self.dim, -1).permute(0, 2, 1)
        x = torch.cat([self.cls.expand(n, -1, -1), x], dim=1) + self.pos
        return self.head(self.blocks(x)[:, 0])


class ReadsAValue(nn.Module):
    """A forward that needs a tensor's value as a Python number, which tracing cannot give."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * x.abs().max().item()  # ITEM-LINE
