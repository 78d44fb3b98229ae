"""MNASNet-B1 at every depth multiplier: specs/ against torchvision's builders (tests/zoo/torchvision_parity.py)."""

from __future__ import annotations

import pytest

from .torchvision_parity import check_meta, check_outputs

BUILDERS = [
    "mnasnet0_5",
    "mnasnet0_75",
    "mnasnet1_0",
    "mnasnet1_3",
]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_and_params_on_meta(builder: str) -> None:
    check_meta(builder)


def test_outputs_equal_for_the_smallest_variant() -> None:
    check_outputs("mnasnet0_5", hw=32)
