"""SqueezeNet 1.0 and 1.1 (specs/squeezenet1_*.yaml, families/squeezenet.yaml) against torchvision's builders."""

from __future__ import annotations

import pytest

from .torchvision_parity import check_meta, check_outputs

BUILDERS = ["squeezenet1_0", "squeezenet1_1"]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_and_params_on_meta(builder: str) -> None:
    check_meta(builder)


def test_outputs_equal_at_the_smallest_input() -> None:
    check_outputs("squeezenet1_1", hw=17)  # the smallest input 1.1 accepts (spec's expect: min_input)
