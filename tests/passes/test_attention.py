"""`sdpa_attention`: `nn.MultiheadAttention` swapped for `F.scaled_dot_product_attention`, outputs unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import archspec
from archspec.ops.modules import SDPAttention, SelfAttention
from archspec.passes import optimize

SPECS = Path(__file__).resolve().parents[2] / "specs"


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / a.abs().max()).item()


@pytest.mark.parametrize(("heads", "bias"), [(1, True), (4, True), (8, False)])
def test_the_swapped_module_computes_what_multihead_attention_does(heads: int, bias: bool) -> None:
    torch.manual_seed(0)
    old = SelfAttention(64, heads, bias=bias).eval()
    if bias:
        nn.init.normal_(old.in_proj_bias), nn.init.normal_(old.out_proj.bias)
    new = SDPAttention(64, heads, bias=bias).eval()
    new.load_state_dict(old.state_dict(), strict=True)
    x = torch.randn(3, 17, 64)
    with torch.no_grad():
        want = nn.MultiheadAttention.forward(old, x, x, x, need_weights=False)[0]
        assert _relative_error(want, new(x)) <= 1e-5


@pytest.mark.slow
def test_vit_b_32_is_unchanged_and_keeps_its_tensors() -> None:
    module = archspec.build(SPECS / "vit_b_32.yaml", input=[3, 64, 64]).eval()
    fast = optimize(module, ["sdpa_attention"])
    assert fast.passes == {"sdpa_attention": 12}
    attention = [m for m in fast.modules() if isinstance(m, (SelfAttention, SDPAttention))]
    assert len(attention) == 12 and all(type(m) is SDPAttention for m in attention)
    assert set(fast.state_dict()) == set(module.state_dict())
    for key, value in fast.state_dict().items():
        assert torch.equal(value, module.state_dict()[key]), key
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert _relative_error(module(x), fast(x)) <= 1e-4
    assert module.get_submodule("encoder.layers.encoder_layer_0.self_attention").__class__ is SelfAttention


def test_is_a_default_pass_on_cpu_and_cuda() -> None:
    from archspec.passes import DEFAULT_PASSES

    assert all("sdpa_attention" in passes for passes in DEFAULT_PASSES.values())
