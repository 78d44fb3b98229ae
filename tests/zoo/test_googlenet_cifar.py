"""specs/googlenet_cifar.yaml: the 32×32 GoogLeNet of seed 002, checked against the seed's own model.

`SeedGoogLeNet` below is the seed's PyTorch model with its forward fixed as
the spec's comments explain (modules chained, attribute names read as the
constructor's, a global average pool and 10 classes); its module names are
the seed's, so its state_dict must load into the compiled spec with
strict=True and give the same outputs. Then a few SGD steps must lower the
loss on a small batch of random images with fixed labels.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import archspec

from . import SPECS, calibrate_bn, torch_macs

SPEC = SPECS / "googlenet_cifar.yaml"

# (in channels, #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj) of im1 ... im9, as in the seed
WIDTHS = [
    (192, 64, 96, 128, 16, 32, 32),
    (256, 128, 128, 192, 32, 96, 64),
    (480, 192, 96, 208, 16, 48, 64),
    (512, 160, 112, 224, 24, 64, 64),
    (512, 128, 128, 256, 24, 64, 64),
    (512, 112, 144, 288, 32, 64, 64),
    (528, 256, 160, 320, 32, 128, 128),
    (832, 256, 160, 320, 32, 128, 128),
    (832, 384, 192, 384, 48, 128, 128),
]


def _cbr(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2), nn.BatchNorm2d(cout), nn.ReLU(True)]


class SeedInception(nn.Module):
    """The seed's InceptionModule: four nn.Sequential branches, the "5×5" one two 3×3 convs."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool: int):
        super().__init__()
        self.block1 = nn.Sequential(*_cbr(cin, c1, 1))
        self.block2 = nn.Sequential(*_cbr(cin, c3r, 1), *_cbr(c3r, c3, 3))
        self.block3 = nn.Sequential(*_cbr(cin, c5r, 1), *_cbr(c5r, c5, 3), *_cbr(c5, c5, 3))
        self.block4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), *_cbr(cin, pool, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.block1(x), self.block2(x), self.block3(x), self.block4(x)], 1)


class SeedGoogLeNet(nn.Module):
    """The seed's GoogLeNet, forward fixed; global average pool and 10 classes (see the spec)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(*_cbr(3, 192, 3))
        for i, widths in enumerate(WIDTHS, start=1):
            self.add_module(f"im{i}", SeedInception(*widths))
        self.max_pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.average_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i in range(1, 10):
            x = getattr(self, f"im{i}")(x)
            if i in (2, 7):
                x = self.max_pool(x)
        return self.fc(torch.flatten(self.average_pool(x), 1))


@pytest.fixture(scope="module")
def typed() -> archspec.TypedGraph:
    return archspec.compile(SPEC)


def test_spec_checks():
    result = archspec.check_file(SPEC)
    assert result.ok, [d.headline() for d in result.diagnostics]


def test_seed_model_loads_and_gives_the_same_outputs(typed):
    torch.manual_seed(0)
    seed = calibrate_bn(SeedGoogLeNet(), torch.randn(2, 3, 32, 32))
    model = archspec.build(SPEC).eval()
    model.load_state_dict(seed.state_dict(), strict=True)
    assert typed.total("params") == sum(p.numel() for p in seed.parameters()) == 6_166_250

    x = torch.randn(2, 3, 32, 32)
    want, macs = torch_macs(seed, x)
    with torch.no_grad():
        got = model(x)
    assert macs == typed.total("macs", inference=True)
    assert got.shape == want.shape == (2, 10)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_block_shapes(typed):
    shapes = {f"im{i}": typed.shape(typed.net.scopes[f"im{i}"].output) for i in range(1, 10)}
    assert shapes == {
        "im1": (256, 32, 32), "im2": (480, 32, 32),
        "im3": (512, 16, 16), "im4": (512, 16, 16), "im5": (512, 16, 16), "im6": (528, 16, 16),
        "im7": (832, 16, 16),
        "im8": (832, 8, 8), "im9": (1024, 8, 8),
    }


def test_a_few_sgd_steps_lower_the_loss():
    # 1.5 GMACs per 32×32 image (no early downsampling), so the batch stays tiny
    torch.manual_seed(0)
    model = archspec.build(SPEC).train()
    x = torch.randn(2, 3, 32, 32)
    y = torch.tensor([3, 7])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0], losses
