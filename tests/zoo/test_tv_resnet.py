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


def test_outputs_equal_at_a_small_input() -> None:
    check_outputs("resnet18", hw=32)  # 32 → 1×1 at layer4
