"""`separable_maxpool`: the same values as torch's max pool for every kernel, stride, padding and ceil mode."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from torch import nn

import archspec
from archspec.passes import SeparableMaxPool2d, optimize
from archspec.passes.separable_maxpool import pooled_size, usable

SPECS = Path(__file__).resolve().parents[2] / "specs"

CASES = [(k, s, p, ceil, h, w) for k, s, ceil, h, w in itertools.product((1, 2, 3, 4, 5), (1, 2, 3), (False, True),
                                                                          (1, 5, 8), (6, 9))
         for p in range(k // 2 + 1) if h + 2 * p >= k and w + 2 * p >= k]


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_equal_to_torch_max_pool(channels_last):
    gen = torch.Generator().manual_seed(0)
    for k, s, p, ceil, h, w in CASES:
        pool = nn.MaxPool2d(k, s, p, ceil_mode=ceil)
        x = torch.randn(2, 5, h, w, generator=gen)
        x[0, 0, 0, 0], x[1, 2, -1, -1] = float("nan"), -float("inf")
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        expected, got = pool(x), SeparableMaxPool2d(pool)(x)
        case = f"k={k} s={s} p={p} ceil={ceil} {h}x{w}"
        assert got.shape == expected.shape, case
        assert torch.equal(got.isnan(), expected.isnan()) and torch.equal(got.nan_to_num(), expected.nan_to_num()), case
        if channels_last and h > 1:
            assert got.is_contiguous(memory_format=torch.channels_last), case


def test_output_size_follows_torch():
    for k, s, p, ceil, h, _ in CASES:
        assert pooled_size(h, k, s, p, ceil) == nn.MaxPool2d(k, s, p, ceil_mode=ceil)(torch.zeros(1, 1, h, h)).shape[-1]


def test_only_plain_stride_one_pools_are_replaced():
    assert usable(nn.MaxPool2d(3, 1, 1, ceil_mode=True))
    assert not usable(nn.MaxPool2d(3, 2, 1))
    assert not usable(nn.MaxPool2d(3, 2, dilation=2))
    assert not usable(nn.MaxPool2d(3, 2, return_indices=True))
    assert not usable(nn.AvgPool2d(3))


def test_googlenet_pools_are_replaced_and_export_sees_a_max_pool():
    module = archspec.build(SPECS / "googlenet.yaml").eval()
    optimized = optimize(module, ["separable_maxpool"])
    assert optimized.passes == {"separable_maxpool": 9}  # the Inception blocks' pools; not the 4 of stride 2
    assert sum(type(m) is nn.MaxPool2d for m in optimized.modules()) == 4
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        assert torch.equal(module(x), optimized(x))
    program = torch.export.export(optimized, (x,))  # traced: the plain pool, which inductor lowers without indices
    assert any("max_pool2d" in str(n.target) for n in program.graph.nodes)
