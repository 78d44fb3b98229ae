"""DenseNet-121, 161, 169, 201 (specs/densenet*.yaml, families/densenet.yaml) against torchvision's builders."""

from __future__ import annotations

import pytest

from .torchvision_parity import check_meta, check_outputs

BUILDERS = ["densenet121", "densenet161", "densenet169", "densenet201"]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_and_params_on_meta(builder: str) -> None:
    check_meta(builder)


def test_outputs_equal_at_a_small_input() -> None:
    check_outputs("densenet121", hw=32)  # 32 → 1×1 after the third transition
