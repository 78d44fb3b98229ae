"""SqueezeNet 1.0 and 1.1 (specs/squeezenet1_*.yaml, families/squeezenet.yaml) against torchvision's builders."""

from __future__ import annotations

import pytest

from .torchvision_parity import check_meta, check_outputs

BUILDERS = ["squeezenet1_0", "squeezenet1_1"]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_and_params_on_meta(builder: str) -> None:
    check_meta(builder)


# Both versions: strides, pool settings and ceil mode (of the stem and the parameter-free pools) are what keys
# and shapes cannot see; each at the smallest input it accepts (its spec's expect: min_input). Both are tiny.
@pytest.mark.parametrize("builder, hw", [("squeezenet1_0", 21), ("squeezenet1_1", 17)])
def test_outputs_equal_at_the_smallest_input(builder: str, hw: int) -> None:
    check_outputs(builder, hw=hw)
