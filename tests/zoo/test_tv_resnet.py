"""ResNet, ResNeXt and Wide ResNet (specs/resnet*.yaml, resnext*, wide_resnet*; families/resnet.yaml)
against torchvision's builders."""

from __future__ import annotations

import pytest

from .torchvision_parity import check_meta, check_outputs

BUILDERS = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
    "wide_resnet50_2", "wide_resnet101_2",
]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_and_params_on_meta(builder: str) -> None:
    check_meta(builder)


# resnet18 is the smallest variant (BasicBlock); resnext50_32x4d exercises the Bottleneck, whose stride on the
# 3×3 (not the 1×1) and grouped, widened 3×3 leave every weight's shape the same: only outputs tell them apart.
@pytest.mark.parametrize("builder", ["resnet18", "resnext50_32x4d"])
def test_outputs_equal_at_a_small_input(builder: str) -> None:
    check_outputs(builder, hw=32)  # 32 → 1×1 at layer4
