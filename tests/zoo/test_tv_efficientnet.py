"""EfficientNet B0-B7 and V2 S/M/L: specs/ against torchvision's builders (tests/zoo/torchvision_parity.py,
torchvision_checks.py)."""

from __future__ import annotations

import pytest

from .torchvision_checks import check_counts, check_settings, check_variant_vars, one_thread
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
def test_keys_shapes_params_and_macs(builder: str) -> None:
    check_meta(builder)
    check_counts(builder, torch_counter=builder == "efficientnet_b0")


@pytest.mark.parametrize("builder", ["efficientnet_b0", "efficientnet_v2_s"])  # V2 alone has FusedMBConv
def test_outputs_equal_for_the_smallest_variant(builder: str) -> None:
    with one_thread():
        check_outputs(builder, hw=32)


# one builder per BatchNorm setting: the defaults (B0-B4), eps 1e-3 and momentum 0.01 (B5-B7), eps 1e-3 (V2)
@pytest.mark.parametrize("builder", ["efficientnet_b0", "efficientnet_b5", "efficientnet_v2_s"])
def test_norm_dropout_and_drop_path_settings(builder: str) -> None:
    check_settings(builder)


def test_the_variant_numbers_are_vars() -> None:
    check_variant_vars("efficientnet_b0", "efficientnet_b2", width_mult=1.1, depth_mult=1.2)
