"""MaxViT-T: specs/maxvit_t.yaml against torchvision's maxvit_t (tests/zoo/torchvision_parity.py,
torchvision_checks.py).

Real tensors run at a smaller partition size: torchvision's MaxVit needs every stage's map divisible by
it, so at 7 the smallest input is 221×221; at 3 it is 93×93 (maps 47, 24, 12, 6, 3), the same network
otherwise. maxvit_t() fixes partition_size=7, so the reference is torchvision's MaxVit class with
maxvit_t's arguments.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torchvision.models.maxvit import MaxVit
from torchvision.ops import StochasticDepth

import archspec

from . import SPECS, calibrate_bn
from .torchvision_checks import check_counts, one_thread
from .torchvision_parity import RTOL, check_meta, reference

SPEC = SPECS / "maxvit_t.yaml"


def maxvit_t(partition_size: int, hw: int) -> nn.Module:
    """torchvision's maxvit_t at another partition size and input size."""
    return MaxVit((hw, hw), stem_channels=64, partition_size=partition_size, block_channels=[64, 128, 256, 512],
                  block_layers=[2, 2, 5, 2], head_dim=32, stochastic_depth_prob=0.2)


def test_keys_shapes_params_and_macs() -> None:
    check_meta("maxvit_t")
    check_counts("maxvit_t", torch_counter=True)


def test_outputs_equal_at_the_smallest_input() -> None:
    hw, size = 93, 3
    torch.manual_seed(0)
    x = torch.randn(2, 3, hw, hw)
    ref = maxvit_t(size, hw)
    for name, p in ref.named_parameters():  # torchvision's std of 0.02 would leave the bias tables near 0
        if "relative_position_bias_table" in name:
            nn.init.normal_(p, 0.0, 0.5)
    ours = archspec.build(SPEC, input=[3, hw, hw], partition_size=size)
    with one_thread(), torch.no_grad():
        ref = calibrate_bn(ref, x)
        ours.load_state_dict(ref.state_dict(), strict=True)
        ours.eval()
        want, got = ref(x), ours(x)
        assert got.shape == want.shape == (2, 1000)
        scale = want.abs().max().item()
        err = (got - want).abs().max().item()
        assert err <= RTOL * scale, f"max |diff| {err:.3g} against max |out| {scale:.3g}"
        assert ours.train()(x).shape == want.shape


@pytest.mark.parametrize(("size", "smallest"), [(7, 221), (3, 93)])
def test_min_input_is_the_smallest_torchvision_accepts(size: int, smallest: int) -> None:
    typed = archspec.compile(SPEC, partition_size=size, input=[3, smallest, smallest])
    assert archspec.min_input(typed.graph) == (smallest, smallest)
    with torch.device("meta"):
        maxvit_t(size, smallest)
        with pytest.raises(ValueError, match="not divisible by partition size"):
            maxvit_t(size, smallest - 1)


def test_an_input_of_another_size_is_a_located_error() -> None:
    with pytest.raises(archspec.SpecError) as info:
        archspec.compile(SPEC, input=[3, 160, 160])
    (diag,) = info.value.diagnostics
    assert diag.code == "indivisible-size" and diag.found == "H×W = 40×40"
    assert diag.path == "blocks/0/layers/0/layers/window_attention/attn_layer/1"
    assert "the smallest input this network accepts is 221×221 (given 160×160)" in (diag.hint or "")


def test_norm_dropout_and_drop_path_settings() -> None:
    with torch.device("meta"):
        ref = reference("maxvit_t")
    ours: dict[str, Any] = dict(archspec.build(SPEC, device="meta").named_modules())
    checked = 0
    for name, module in ref.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            assert (ours[name].eps, ours[name].momentum) == (module.eps, module.momentum), name
        elif isinstance(module, nn.LayerNorm):
            assert ours[name].eps == module.eps, name
        elif isinstance(module, nn.Dropout):
            assert ours[name].p == module.p, name
        elif isinstance(module, StochasticDepth):
            assert ours[name].p == pytest.approx(module.p, rel=1e-12, abs=1e-15), name
            if name.endswith("stochastic_dropout"):  # torchvision uses it twice: after attention and the MLP
                mlp = ours[name.replace("stochastic_dropout", "mlp_stochastic_dropout")]
                assert mlp.p == ours[name].p, name
        else:
            continue
        checked += 1
    assert checked > 100



def test_python_source_and_optimize_at_the_small_input() -> None:
    """The whole network downstream, at partition size 3 and 93×93 (tests/backends and tests/passes run their
    representative specs at the spec's own input, 224×224 here: too slow for CI): the written `-o .py` file and
    `optimize` give the built module's outputs. ONNX: tests/ops/test_partition_attention.py exports the
    attention layer in both modes (the whole network takes two minutes to export on 2 cores)."""
    from archspec.backends.python_source import emit_python

    typed = archspec.compile(SPEC, input=[3, 93, 93], partition_size=3)
    torch.manual_seed(0)
    module = archspec.build(typed).eval()
    x = torch.randn(2, 3, 93, 93)
    with one_thread(), torch.no_grad():
        want = module(x)
        namespace: dict[str, Any] = {}
        exec(compile(emit_python(typed), "maxvit_t.py", "exec"), namespace)
        written = namespace["MaxvitT"]().eval()
        written.load_state_dict(module.state_dict(), strict=True)
        torch.testing.assert_close(written(x), want, rtol=0, atol=1e-5)
        optimized = archspec.optimize(module)
        assert (optimized(x) - want).abs().max() <= RTOL * want.abs().max()
