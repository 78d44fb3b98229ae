"""specs/bn_inception.yaml: BN-Inception (Ioffe & Szegedy 2015, Figure 5) as Cadene's `bninception` port.

pretrainedmodels is not installed, so the port's numbers are checked instead:
11,295,240 parameters, 69 biased convs each followed by BN (eps 1e-5), the
concat widths of its 4d/5a convs (608 and 1056 input channels), and the
paper table's output sizes with its known errors corrected.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

import archspec

from . import SPECS, torch_macs

SPEC = SPECS / "bn_inception.yaml"

# Figure 5's "output size" column (C, H, W), corrected where the printed value is wrong.
TABLE = {
    "conv1": (64, 112, 112),
    "pool1": (64, 56, 56),
    "conv2": (192, 56, 56),
    "pool2": (192, 28, 28),
    "inception3a": (256, 28, 28),
    "inception3b": (320, 28, 28),
    "inception3c": (576, 14, 14),   # printed 28×28×576, but 3c has stride 2
    "inception4a": (576, 14, 14),
    "inception4b": (576, 14, 14),
    "inception4c": (608, 14, 14),   # printed 576: 160 + 160 + 160 + 128 = 608
    "inception4d": (608, 14, 14),   # printed 576: 96 + 192 + 192 + 128 = 608
    "inception4e": (1056, 7, 7),    # printed 14×14×1024: stride 2, 192 + 256 + 608 = 1056
    "inception5a": (1024, 7, 7),
    "inception5b": (1024, 7, 7),
    "avgpool": (1024, 1, 1),
}


@pytest.fixture(scope="module")
def typed() -> archspec.TypedGraph:
    return archspec.compile(SPEC)


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return archspec.build(SPEC).eval()


def test_spec_checks():
    result = archspec.check_file(SPEC)
    assert result.ok, [d.headline() for d in result.diagnostics]


def test_params_are_the_ports(typed, model):
    assert typed.total("params") == sum(p.numel() for p in model.parameters()) == 11_295_240
    assert typed.total("params", inference=True) == 11_295_240


def test_block_shapes_follow_the_corrected_table(typed):
    def shape(name: str) -> tuple[int, ...]:
        scope = typed.net.scopes.get(name)  # a block instance, or else a single op
        return typed.shape(scope.output if scope else name)

    assert {name: shape(name) for name in TABLE} == TABLE


def test_layers_are_the_ports(model):
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == len(bns) == 69
    assert all(c.bias is not None for c in convs)
    assert all(b.eps == 1e-5 for b in bns)
    assert all(m.ceil_mode for m in model.modules() if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)))
    assert all(m.count_include_pad for m in model.modules() if isinstance(m, nn.AvgPool2d))
    # the widths the port's convs read (Conv2d(608, 96, ...) in 4d, Conv2d(1056, 352, ...) in 5a)
    assert model.inception4d.branch1x1.conv.in_channels == 608
    assert model.inception4e.branch3x3_reduce.conv.in_channels == 608
    assert model.inception5a.branch1x1.conv.in_channels == 1056
    assert isinstance(model.inception5b.pool, nn.MaxPool2d)
    assert model.fc.in_features == 1024


def test_bn_momentum_of_the_port_is_a_variable():
    typed = archspec.compile(SPEC, bn_momentum=0.9)
    moms = {n.attrs.momentum for n in typed.net.nodes.values() if n.op == "bn"}
    assert moms == {0.9}


def test_forward_at_224_agrees_with_the_compiler(typed, model):
    x = torch.randn(1, 3, 224, 224)
    out, macs = torch_macs(lambda t: ShapeProp(model).propagate(t), x)
    assert out.shape == (1, 1000)
    assert torch.isfinite(out).all()
    assert macs == typed.total("macs", inference=True) == 2_032_600_064
    # every node's shape, as torch computed it, is the one archspec inferred
    nodes = [n for n in model.graph.nodes if "archspec" in n.meta]
    assert len(nodes) > 200
    for n in nodes:
        assert tuple(n.meta["tensor_meta"].shape[1:]) == n.meta["archspec"]["shape"], n.name


def test_min_input(typed, model):
    # the final 7×7/1 average pool needs a 7×7 map: 223 is the smallest input
    assert archspec.min_input(typed.graph) == (223, 223)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 223, 223)).shape == (1, 1000)
        with pytest.raises(RuntimeError):
            model(torch.randn(1, 3, 222, 222))
