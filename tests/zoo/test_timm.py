"""specs/inception_v4.yaml and specs/inception_resnet_v2.yaml against timm, weight for weight.

The references are `timm.create_model(name, pretrained=False)`; each state_dict
must load into the compiled module with strict=True (every module name is
timm's, e.g. `features.3.conv.conv.weight`, `repeat.0.conv2d.bias`), and both
networks must compute the same outputs in eval mode. One 299×299 image goes
through each pair; the reference's pass is counted by torch's FLOP counter, to
cross-check archspec's MACs.
"""

from __future__ import annotations

import operator
from collections import Counter
from functools import cache

import pytest
import torch
from torch import nn

import archspec

from . import SPECS, calibrate_bn, torch_macs

timm = pytest.importorskip("timm")

ATOL = 1e-5
EXPECTED = {  # params, MACs at 299, state_dict keys that must exist
    "inception_v4": (42_679_816, 12_253_974_624, {"features.3.conv.conv.weight", "last_linear.weight"}),
    "inception_resnet_v2": (55_843_464, 13_155_794_016,
                            {"repeat.0.conv2d.bias", "repeat_1.19.conv2d.weight", "block8.conv2d.bias"}),
}


@cache
def pair(name: str) -> dict:
    """The timm reference (BN calibrated), the archspec module with its weights, and one run of both."""
    torch.manual_seed(0)
    reference = calibrate_bn(timm.create_model(name, pretrained=False), torch.randn(1, 3, 299, 299))
    model = archspec.build(SPECS / f"{name}.yaml")
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    x = torch.randn(1, 3, 299, 299, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = model(x)
    want, macs = torch_macs(reference, x)
    return {"reference": reference, "model": model, "got": got, "want": want, "macs": macs}


@pytest.fixture(params=sorted(EXPECTED), scope="module")
def name(request) -> str:
    return request.param


def test_spec_checks(name):
    result = archspec.check_file(SPECS / f"{name}.yaml")
    assert result.ok, [d.headline() for d in result.diagnostics]


def test_state_dict_keys_and_shapes_equal(name):
    p = pair(name)
    ref_sd, our_sd = p["reference"].state_dict(), p["model"].state_dict()
    assert list(our_sd) == list(ref_sd)  # same keys, in the same order
    assert {k: v.shape for k, v in our_sd.items()} == {k: v.shape for k, v in ref_sd.items()}
    assert EXPECTED[name][2] <= set(our_sd)


def test_counts_match_timm(name):
    p, (params, macs, _) = pair(name), EXPECTED[name]
    typed = archspec.compile(SPECS / f"{name}.yaml")
    assert typed.total("params") == sum(t.numel() for t in p["reference"].parameters()) == params
    assert typed.total("macs", inference=True) == p["macs"] == macs


def test_eval_outputs_equal(name):
    got, want = pair(name)["got"], pair(name)["want"]
    assert got.shape == want.shape == (1, 1000)
    assert want.abs().max() > 0.1  # calibrated BN: outputs of order 1, so ATOL means something
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL)


def test_min_input(name):
    assert archspec.min_input(archspec.compile(SPECS / f"{name}.yaml").graph) == (75, 75)
    with torch.no_grad():
        for net in (pair(name)["reference"], pair(name)["model"]):
            assert net(torch.randn(1, 3, 75, 75)).shape == (1, 1000)
            with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
                net(torch.randn(1, 3, 74, 74))


def test_inception_v4_bn_and_pool_settings():
    model, reference = pair("inception_v4")["model"], pair("inception_v4")["reference"]
    ours = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    theirs = [m for m in reference.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(ours) == len(theirs) == 149
    assert {(m.eps, m.momentum) for m in ours} == {(m.eps, m.momentum) for m in theirs} == {(1e-3, 0.1)}
    pools = [m for m in model.modules() if isinstance(m, nn.AvgPool2d)]
    assert len(pools) == 14 and not any(p.count_include_pad for p in pools)


def test_inception_resnet_v2_residual_blocks():
    model, reference = pair("inception_resnet_v2")["model"], pair("inception_resnet_v2")["reference"]
    # out * scale + x: 10 × 0.17, 20 × 0.10, 9 × 0.20, and the last block8 × 1.0
    scales = Counter(n.args[1] for n in model.graph.nodes if n.op == "call_function" and n.target is operator.mul)
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
