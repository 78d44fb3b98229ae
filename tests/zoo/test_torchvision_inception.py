"""GoogLeNet and Inception v3 against torchvision's builders through the shared parity checks (meta device)."""

from __future__ import annotations

import pytest

from .torchvision_parity import check_meta


@pytest.mark.parametrize("builder", ["googlenet", "inception_v3"])
def test_keys_shapes_and_params_on_meta(builder: str) -> None:
    check_meta(builder)
