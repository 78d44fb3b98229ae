"""VGG-11, 13, 16, 19 with and without BN (specs/vgg*.yaml, families/vgg.yaml) against torchvision's builders."""

from __future__ import annotations

import pytest

from .torchvision_parity import check_meta, check_outputs

BUILDERS = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_and_params_on_meta(builder: str) -> None:
    check_meta(builder)


def test_outputs_equal_at_the_smallest_input() -> None:
    # the smallest variant with BN (its keys and shapes fix where BN sits; its outputs, that BN is applied in order);
    # 32×32 is torchvision's documented min_size: the 1×1 grid is pooled up to 7×7
    check_outputs("vgg11_bn", hw=32)
