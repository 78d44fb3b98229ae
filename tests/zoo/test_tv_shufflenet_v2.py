"""ShuffleNetV2 at every width: specs/ against torchvision's builders (tests/zoo/torchvision_parity.py)."""

from __future__ import annotations

import pytest

from .torchvision_parity import check_meta, check_outputs

BUILDERS = [
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_and_params_on_meta(builder: str) -> None:
    check_meta(builder)


def test_outputs_equal_for_the_smallest_variant() -> None:
    check_outputs("shufflenet_v2_x0_5", hw=32)
