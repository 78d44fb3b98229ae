"""MobileNetV3 (Small and Large): specs/ against torchvision's builders (tests/zoo/torchvision_parity.py)."""

from __future__ import annotations

import pytest

from .torchvision_parity import check_meta, check_outputs

BUILDERS = [
    "mobilenet_v3_small",
    "mobilenet_v3_large",
]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_and_params_on_meta(builder: str) -> None:
    check_meta(builder)


def test_outputs_equal_for_the_smallest_variant() -> None:
    check_outputs("mobilenet_v3_small", hw=32)
