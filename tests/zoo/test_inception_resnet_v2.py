"""specs/inception_resnet_v2.yaml against timm's InceptionResnetV2, weight for weight.

The reference is `timm.create_model("inception_resnet_v2", pretrained=False)`.
Every module name is timm's (the first residual stage is a layer named
`repeat`, which holds a `repeat:` construct). The reference's state_dict loads
with strict=True, and both networks compute the same outputs in eval mode. One forward pass of each at
299×299 (batch 1) is shared by the tests; the reference's pass is counted by
torch's FLOP counter, to cross-check archspec's MACs.
"""

from __future__ import annotations

import operator
from collections import Counter

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archspec

from . import SPECS, calibrate_bn

timm = pytest.importorskip("timm")

SPEC = SPECS / "inception_resnet_v2.yaml"
ATOL = 1e-5
PARAMS = 55_843_464
MACS = 13_155_794_016


@pytest.fixture(scope="module")
def reference() -> nn.Module:
    torch.manual_seed(0)
    ref = timm.create_model("inception_resnet_v2", pretrained=False)
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
    assert {"repeat.0.conv2d.bias", "repeat_1.19.conv2d.weight", "block8.conv2d.bias"} <= set(our_sd)


def test_residual_blocks(reference, model):
    # out * scale + x: 10 × 0.17, 20 × 0.10, 9 × 0.20, and the last block8 × 1.0
    scales = Counter(n.args[1] for n in model.graph.nodes
                     if n.op == "call_function" and n.target is operator.mul)
    assert scales == Counter({0.17: 10, 0.1: 20, 0.2: 9, 1.0: 1})
    assert [reference.repeat[0].scale, reference.repeat_1[0].scale, reference.repeat_2[0].scale,
            reference.block8.scale] == [0.17, 0.1, 0.2, 1.0]
    # the up-projections are the only convs with a bias
    biased = sorted(name for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.bias is not None)
    assert len(biased) == 40 and all(name.endswith(".conv2d") for name in biased)
    # a ReLU after each of the 204 BNs and each residual sum but the last block8's
    relus = sum(1 for n in model.graph.nodes if n.op == "call_function" and n.target is torch.relu)
    assert relus == 204 + 39 == sum(1 for m in reference.modules() if isinstance(m, nn.ReLU))
    assert reference.block8.relu is None
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 204 and {(m.eps, m.momentum) for m in bns} == {(1e-3, 0.1)}


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
