"""specs/inception_v3.yaml against torchvision's Inception3, weight for weight.

The reference is `torchvision.models.inception_v3(weights=None, aux_logits=True,
init_weights=True, transform_input=False)`; its state_dict must load into the
compiled module with strict=True, and both must compute the same outputs, in
training mode (every dropout p = 0; main output and the AuxLogits head) and in
eval mode. A forward pass at 299 costs about a second on CPU, so the module
fixture runs each forward once and the tests compare what it recorded.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torchvision
from torch import nn

import archspec
from archspec import SpecError

from . import SPECS, torch_macs

SPEC = SPECS / "inception_v3.yaml"
ATOL = 1e-5


@pytest.fixture(scope="module")
def typed() -> archspec.TypedGraph:
    return archspec.compile(SPEC)


@pytest.fixture(scope="module")
def run() -> SimpleNamespace:
    """Both networks with torchvision's weights, and their outputs in training and in eval mode."""
    torch.manual_seed(0)
    ref = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True, transform_input=False)
    ours = archspec.build(SPEC, dropout=0.0)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.dropout.p = 0.0

    # Training mode, batch 2 (the head's BN sees a 1×1 map: one value per image).
    # Momentum None makes the running statistics those of this batch, so the
    # eval-mode comparison below runs on activations of order 1 (with the
    # initial mean 0 / variance 1 they reach ~1e13 and ATOL would mean nothing).
    for net in (ref, ours):
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
    x_train = torch.randn(2, 3, 299, 299)
    with torch.no_grad():
        train_ref, train_ours = ref.train()(x_train), ours.train()(x_train)

    x = torch.randn(1, 3, 299, 299)
    ref.eval(), ours.eval()
    with torch.no_grad():
        eval_ours = ours(x)
    eval_ref, macs = torch_macs(ref, x)
    return SimpleNamespace(ref=ref, ours=ours, train_ref=train_ref, train_ours=train_ours,
                           eval_ref=eval_ref, eval_ours=eval_ours, macs=macs)


def test_spec_checks():
    result = archspec.check_file(SPEC)
    assert result.ok, [d.headline() for d in result.diagnostics]


def test_state_dicts_match(run):
    ref_sd, our_sd = run.ref.state_dict(), run.ours.state_dict()
    assert {k: v.shape for k, v in our_sd.items()} == {k: v.shape for k, v in ref_sd.items()}
    assert len(our_sd) == 580
    for name, m in run.ref.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            ours = run.ours.get_submodule(name)
            assert (ours.eps, ours.num_features) == (m.eps, m.num_features) == (0.001, m.num_features)


def test_counts_match_torchvision(run, typed):
    total = sum(p.numel() for p in run.ref.parameters())
    aux = sum(p.numel() for p in run.ref.AuxLogits.parameters())
    assert typed.total("params") == total == 27_161_264
    assert typed.total("params", inference=True) == total - aux == 23_834_568
    assert typed.total("macs", inference=True) == run.macs == 5_713_216_096


def test_default_dropout_is_torchvision_s(typed):
    assert typed.net.nodes["dropout"].attrs.p == 0.5


def test_training_outputs_equal(run):
    assert run.ours.loss_weights == {"main": 1.0, "AuxLogits": 0.4}
    assert set(run.train_ours) == {"main", "AuxLogits"}
    torch.testing.assert_close(run.train_ours["main"], run.train_ref.logits, rtol=0, atol=ATOL)
    torch.testing.assert_close(run.train_ours["AuxLogits"], run.train_ref.aux_logits, rtol=0, atol=ATOL)


def test_training_updates_running_stats_alike(run):
    ref_sd = run.ref.state_dict()
    for key, value in run.ours.state_dict().items():
        if "running" in key:
            torch.testing.assert_close(value, ref_sd[key], rtol=1e-5, atol=1e-6)


def test_eval_outputs_equal(run):
    assert run.eval_ours.shape == run.eval_ref.shape == (1, 1000)
    assert run.eval_ref.abs().max() > 0.1  # outputs of order 1: the tolerance is meaningful
    torch.testing.assert_close(run.eval_ours, run.eval_ref, rtol=0, atol=ATOL)


def test_min_input_of_the_inference_graph_is_75(run, typed):
    assert archspec.min_input(typed.graph, inference=True) == (75, 75)  # torchvision's documented min_size
    with torch.no_grad():
        for net in (run.ref, run.ours):
            assert net.eval()(torch.randn(1, 3, 75, 75)).shape == (1, 1000)
            with pytest.raises(RuntimeError):
                net(torch.randn(1, 3, 74, 74))


def test_min_input_with_the_aux_head_is_299(run, typed):
    # The head's 5×5 conv needs a 5×5 map, i.e. a 17×17 Mixed_6e, i.e. a 299×299 input.
    assert archspec.min_input(typed.graph) == (299, 299)
    with pytest.raises(SpecError) as err:
        archspec.compile(SPEC, input=[3, 298, 298])
    assert [d.code for d in err.value.diagnostics] == ["input-too-small"]
    assert err.value.diagnostics[0].path == "AuxLogits/conv1/conv"
    # torchvision's head alone: 17×17 works, 16×16 (Mixed_6e at a 298 input) fails
    head = run.ref.AuxLogits.train()
    with torch.no_grad():
        assert head(torch.randn(2, 768, 17, 17)).shape == (2, 1000)
        with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
            head(torch.randn(2, 768, 16, 16))
