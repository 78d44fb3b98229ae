"""MobileNetV2: specs/ against torchvision's builders (tests/zoo/torchvision_parity.py,
torchvision_checks.py)."""

from __future__ import annotations

import pytest

from .torchvision_checks import check_counts, check_settings, one_thread
from .torchvision_parity import check_meta, check_outputs

BUILDERS = [
    "mobilenet_v2",
]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_params_and_macs(builder: str) -> None:
    check_meta(builder)
    check_counts(builder, torch_counter=builder == "mobilenet_v2")


def test_outputs_equal_for_the_smallest_variant() -> None:
    with one_thread():
        check_outputs("mobilenet_v2", hw=32)


def test_norm_dropout_and_drop_path_settings() -> None:
    check_settings("mobilenet_v2")
