"""specs/inception_v4.yaml against timm's InceptionV4, weight for weight.

The reference is `timm.create_model("inception_v4", pretrained=False)`; its
state_dict must load into the compiled module with strict=True, and both must
compute the same outputs in eval mode. One forward pass of each network at
299×299 (batch 1) is shared by the tests; the reference's pass is counted by
torch's FLOP counter, to cross-check archspec's MACs.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archspec

from . import SPECS, calibrate_bn

timm = pytest.importorskip("timm")

SPEC = SPECS / "inception_v4.yaml"
ATOL = 1e-5
PARAMS = 42_679_816
MACS = 12_253_974_624


@pytest.fixture(scope="module")
def reference() -> nn.Module:
    torch.manual_seed(0)
    ref = timm.create_model("inception_v4", pretrained=False)
    return calibrate_bn(ref, torch.randn(1, 3, 299, 299))


@pytest.fixture(scope="module")
def model(reference: nn.Module) -> nn.Module:
    ours = archspec.build(SPEC)
    ours.load_state_dict(reference.state_dict(), strict=True)
    return ours.eval()


@pytest.fixture(scope="module")
def run(reference: nn.Module, model: nn.Module) -> dict:
    """One 299×299 image through both networks; the reference's pass counted by torch's FLOP counter."""
    torch.manual_seed(1)
    x = torch.randn(1, 3, 299, 299)
    with torch.no_grad():
        got = model(x)
        with FlopCounterMode(display=False) as counter:
            want = reference(x)
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return {"got": got, "want": want, "macs": flops // 2}  # conv + linear, 2 FLOPs per MAC


def test_spec_checks():
    result = archspec.check_file(SPEC)
    assert result.ok, [d.headline() for d in result.diagnostics]


def test_state_dict_keys_and_shapes_equal(reference, model):
    ref_sd, our_sd = reference.state_dict(), model.state_dict()
    assert list(our_sd) == list(ref_sd)  # same keys, in the same order
    assert {k: v.shape for k, v in our_sd.items()} == {k: v.shape for k, v in ref_sd.items()}
    assert "features.3.conv.conv.weight" in our_sd and "last_linear.weight" in our_sd


def test_bn_and_pool_settings_equal(reference, model):
    ours = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    theirs = [m for m in reference.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(ours) == len(theirs) == 149
    assert {(m.eps, m.momentum) for m in ours} == {(m.eps, m.momentum) for m in theirs} == {(1e-3, 0.1)}
    pools = [m for m in model.modules() if isinstance(m, nn.AvgPool2d)]
    assert len(pools) == 14 and not any(p.count_include_pad for p in pools)


def test_counts_match_timm(reference, run):
    typed = archspec.compile(SPEC)
    assert typed.total("params") == sum(p.numel() for p in reference.parameters()) == PARAMS
    assert typed.total("macs", inference=True) == run["macs"] == MACS


def test_eval_outputs_equal(run):
    got, want = run["got"], run["want"]
    assert got.shape == want.shape == (1, 1000)
    assert want.abs().max() > 0.1  # calibrated BN: outputs of order 1, so ATOL means something
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL)


def test_min_input(reference, model):
    assert archspec.min_input(archspec.compile(SPEC).graph) == (75, 75)
    with torch.no_grad():
        for net in (reference, model):
            assert net(torch.randn(1, 3, 75, 75)).shape == (1, 1000)
            with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
                net(torch.randn(1, 3, 74, 74))
