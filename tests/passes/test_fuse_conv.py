"""`fuse_conv`: which element-wise work after a conv runs inside the oneDNN call, and that the outputs stay equal."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archspec
from archspec.passes import PackedConv2d, optimize
from archspec.passes.fuse_conv import usable

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")

ACTIVATIONS = ["relu", "relu6", "silu", "hardswish", "hardsigmoid", "sigmoid", "tanh", "gelu", "leaky_relu(0.2)"]


def _build(write_spec, body: str) -> nn.Module:
    spec = write_spec(f"archspec: 1\nname: fused\ninput: [8, 10, 10]\nbody:\n{body}")
    module = archspec.build(spec).eval()
    gen = torch.Generator().manual_seed(0)
    for p in module.parameters():
        p.data.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return module


def _check(module: nn.Module) -> nn.Module:
    fused = optimize(module, ["fuse_conv"], batch=2)
    x = torch.randn(3, 8, 10, 10, generator=torch.Generator().manual_seed(1))  # not the packed batch size
    with torch.inference_mode():
        expected, got = module(x), fused(x)
    assert ((expected - got).abs().max() / expected.abs().max()).item() <= 1e-5
    return fused


def _calls(gm) -> list[str]:
    return [n.op for n in gm.graph.nodes if n.op not in ("placeholder", "output")]


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_activation_runs_inside_the_conv(write_spec, act):
    fused = _check(_build(write_spec, f"  conv: conv(16, 3, p=1)\n  act: {act}\n"))
    packed = [m for m in fused.modules() if isinstance(m, PackedConv2d)]
    assert len(packed) == 1 and packed[0].attr != "none"
    assert _calls(fused) == ["call_module"]  # the activation node is gone


def test_residual_add_and_relu_run_inside_the_conv(write_spec):
    body = ("  stem: conv(16, 3, p=1)\n"
            "  branch: ['conv(16, 3, p=1)', relu, 'conv(16, 1)']\n"
            "  join: add(branch, stem)\n"
            "  relu: relu\n")
    fused = _check(_build(write_spec, body))
    last = fused.get_submodule("branch.2")
    assert isinstance(last, PackedConv2d) and last.residual and last.attr == "relu"
    assert len(_calls(fused)) == 3  # three convs; the add and both ReLUs are inside them


def test_add_without_activation_fuses_the_add(write_spec):
    body = "  stem: conv(16, 3, p=1)\n  branch: conv(16, 1)\n  join: add(branch, stem)\n"
    fused = _check(_build(write_spec, body))
    assert fused.get_submodule("branch").residual and fused.get_submodule("branch").attr == "none"


def test_a_gate_fuses_its_sigmoid_and_leaves_the_multiply(write_spec):
    body = ("  stem: conv(16, 3, p=1)\n"
            "  gate: [global_avgpool, 'conv(16, 1)', sigmoid]\n"
            "  scaled: mul(stem, gate)\n")
    fused = _check(_build(write_spec, body))
    assert fused.get_submodule("gate.1").attr == "sigmoid"
    assert not any(m.residual for m in fused.modules() if isinstance(m, PackedConv2d))
    assert "call_function" in _calls(fused)  # the multiply


def test_a_conv_read_twice_keeps_its_reader(write_spec):
    body = ("  stem: conv(16, 3, p=1)\n"
            "  a: {from: stem, body: relu}\n"
            "  b: {from: stem, body: sigmoid}\n"
            "  join: add(a, b)\n")
    fused = _check(_build(write_spec, body))
    assert fused.get_submodule("stem").attr == "none"  # neither activation may run inside it


def test_packed_module_survives_pickling(write_spec):
    import io

    fused = _check(_build(write_spec, "  conv: conv(16, 3, p=1)\n  act: relu6\n"))
    buffer = io.BytesIO()
    torch.save(fused, buffer)
    buffer.seek(0)
    again = torch.load(buffer, weights_only=False)
    x = torch.randn(2, 8, 10, 10)
    with torch.inference_mode():
        assert torch.equal(again(x), fused(x))


def test_not_usable_off_float32(write_spec):
    assert not usable(_build(write_spec, "  conv: conv(16, 3, p=1)\n").double())
