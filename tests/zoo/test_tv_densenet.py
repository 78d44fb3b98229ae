"""DenseNet-121, 161, 169, 201 (specs/densenet*.yaml, families/densenet.yaml) against torchvision's builders."""

from __future__ import annotations

import pytest
import torch

import archspec

from . import SPECS
from .torchvision_parity import check_meta, check_outputs, reference

BUILDERS = ["densenet121", "densenet161", "densenet169", "densenet201"]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_and_params_on_meta(builder: str) -> None:
    check_meta(builder)


def test_outputs_equal_at_a_small_input() -> None:
    check_outputs("densenet121", hw=32)  # 32 → 1×1 after the third transition


def test_drop_rate_gives_each_dense_layer_its_dropout() -> None:
    """torchvision's builders have drop_rate 0 and no dropout; --set drop_rate adds one per dense layer, no state."""
    with torch.device("meta"):
        ref = reference("densenet121", drop_rate=0.2)
    ours = archspec.build(SPECS / "densenet121.yaml", device="meta", drop_rate=0.2)
    drops = [m.p for m in ours.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == [0.2] * sum(len(getattr(ref.features, f"denseblock{i}")) for i in range(1, 5)) == [0.2] * 58
    assert ours.state_dict().keys() == ref.state_dict().keys()
    plain = archspec.build(SPECS / "densenet121.yaml", device="meta")
    assert not any(isinstance(m, torch.nn.Dropout) for m in plain.modules())
