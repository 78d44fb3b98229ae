"""EfficientNet B0-B7 and V2 S/M/L: specs/ against torchvision's builders (tests/zoo/torchvision_parity.py)."""

from __future__ import annotations

import pytest

from .torchvision_parity import check_meta, check_outputs

BUILDERS = [
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "efficientnet_v2_s",
    "efficientnet_v2_m",
    "efficientnet_v2_l",
]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_and_params_on_meta(builder: str) -> None:
    check_meta(builder)


def test_outputs_equal_for_the_smallest_variant() -> None:
    check_outputs("efficientnet_b0", hw=32)
