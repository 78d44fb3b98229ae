"""ConvNeXt Tiny/Small/Base/Large: specs/ against torchvision's builders (tests/zoo/torchvision_parity.py,
torchvision_checks.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.ops import StochasticDepth

import archspec

from . import SPECS
from .torchvision_checks import check_counts, check_variant_vars, one_thread
from .torchvision_parity import check_meta, check_outputs, reference

BUILDERS = ["convnext_tiny", "convnext_small", "convnext_base", "convnext_large"]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_params_and_macs(builder: str) -> None:
    check_meta(builder)
    check_counts(builder, torch_counter=builder == "convnext_tiny")


def test_outputs_equal_for_the_smallest_variant() -> None:
    with one_thread():
        check_outputs("convnext_tiny", hw=32)  # torchvision's min_size: four 2× reductions after the 4× stem


# torchvision_checks.check_settings reads `use_res_connect`, which CNBlock has not (it always adds its
# residual): the LayerNorm eps, the layer scale's initial value and the stochastic depth rates, here.
@pytest.mark.parametrize("builder", ["convnext_tiny", "convnext_small"])
def test_norm_layer_scale_and_drop_path_settings(builder: str) -> None:
    with torch.device("meta"):
        ref = reference(builder)
    ours = dict(archspec.build(SPECS / f"{builder}.yaml", device="meta").named_modules())
    for name, module in ref.named_modules():
        if isinstance(module, nn.LayerNorm):
            assert ours[name].eps == module.eps, f"{builder}: {name}: {ours[name]}"
        elif isinstance(module, StochasticDepth):
            assert ours[name].p == module.p, f"{builder}: {name}: p {ours[name].p}, torchvision {module.p}"
    built = archspec.build(SPECS / f"{builder}.yaml")
    assert torch.equal(built.get_parameter("features.1.0.layer_scale"), torch.full((96, 1, 1), 1e-6))


def test_the_variant_numbers_are_vars() -> None:
    check_variant_vars("convnext_tiny", "convnext_base", widths=[128, 256, 512, 1024], depths=[3, 3, 27, 3])
