"""ShuffleNetV2 at every width: specs/ against torchvision's builders (tests/zoo/torchvision_parity.py,
torchvision_checks.py)."""

from __future__ import annotations

import pytest

from .torchvision_checks import check_counts, check_settings, check_variant_vars, one_thread
from .torchvision_parity import check_meta, check_outputs

BUILDERS = [
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_params_and_macs(builder: str) -> None:
    check_meta(builder)
    check_counts(builder, torch_counter=builder == "shufflenet_v2_x0_5")


def test_outputs_equal_for_the_smallest_variant() -> None:
    with one_thread():
        check_outputs("shufflenet_v2_x0_5", hw=32)


def test_norm_dropout_and_drop_path_settings() -> None:
    check_settings("shufflenet_v2_x0_5")


def test_the_variant_numbers_are_vars() -> None:
    check_variant_vars("shufflenet_v2_x0_5", "shufflenet_v2_x1_0", stages_out_channels=[24, 116, 232, 464, 1024])
