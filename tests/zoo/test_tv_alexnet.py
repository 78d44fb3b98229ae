"""AlexNet (specs/alexnet.yaml) against torchvision's builder."""

from __future__ import annotations

from .torchvision_parity import check_meta, check_outputs


def test_keys_shapes_and_params_on_meta() -> None:
    check_meta("alexnet")


def test_outputs_equal_at_the_smallest_input() -> None:
    check_outputs("alexnet", hw=63)  # torchvision's documented min_size
