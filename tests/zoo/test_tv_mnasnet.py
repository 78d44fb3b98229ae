"""MNASNet-B1 at every depth multiplier: specs/ against torchvision's builders (tests/zoo/torchvision_parity.py,
torchvision_checks.py)."""

from __future__ import annotations

import pytest

from .torchvision_checks import check_counts, check_settings, check_variant_vars, one_thread
from .torchvision_parity import check_meta, check_outputs

BUILDERS = [
    "mnasnet0_5",
    "mnasnet0_75",
    "mnasnet1_0",
    "mnasnet1_3",
]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_params_and_macs(builder: str) -> None:
    check_meta(builder)
    check_counts(builder, torch_counter=builder == "mnasnet0_5")


def test_outputs_equal_for_the_smallest_variant() -> None:
    with one_thread():
        check_outputs("mnasnet0_5", hw=32)


def test_norm_dropout_and_drop_path_settings() -> None:
    check_settings("mnasnet0_5")


def test_the_variant_numbers_are_vars() -> None:
    check_variant_vars("mnasnet1_0", "mnasnet0_5", alpha=0.5)
