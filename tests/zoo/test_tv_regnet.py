"""RegNetX and RegNetY, 400MF to 128GF: specs/ against torchvision's builders (tests/zoo/torchvision_parity.py,
torchvision_checks.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torchvision.models import regnet

from .torchvision_checks import check_counts, check_settings, check_variant_vars, one_thread
from .torchvision_parity import check_meta, check_outputs

X = ["regnet_x_400mf", "regnet_x_800mf", "regnet_x_1_6gf", "regnet_x_3_2gf", "regnet_x_8gf", "regnet_x_16gf",
     "regnet_x_32gf"]
Y = ["regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf", "regnet_y_3_2gf", "regnet_y_8gf", "regnet_y_16gf",
     "regnet_y_32gf", "regnet_y_128gf"]


@pytest.fixture(autouse=True)
def block_params_on_cpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """torchvision's builders compute BlockParams with tensors and read them back (`.tolist()`), which the
    meta device (where the shared checks build the reference) cannot do: compute them on the CPU."""
    compute = regnet.BlockParams.from_init_params.__func__  # type: ignore[attr-defined]

    def on_cpu(cls: type, *args: Any, **kwargs: Any) -> regnet.BlockParams:
        with torch.device("cpu"):
            return compute(cls, *args, **kwargs)

    monkeypatch.setattr(regnet.BlockParams, "from_init_params", classmethod(on_cpu))
    yield


@pytest.mark.parametrize("builder", X + Y)
def test_keys_shapes_params_and_macs(builder: str) -> None:
    check_meta(builder)
    check_counts(builder, torch_counter=builder in ("regnet_x_400mf", "regnet_y_400mf"))


@pytest.mark.parametrize("builder", ["regnet_x_400mf", "regnet_y_400mf"])  # Y alone has squeeze-excitation
def test_outputs_equal_for_the_smallest_variant(builder: str) -> None:
    with one_thread():
        check_outputs(builder, hw=32)


def test_norm_settings() -> None:
    check_settings("regnet_y_400mf")


def test_the_variant_numbers_are_vars() -> None:
    check_variant_vars("regnet_y_400mf", "regnet_y_800mf", widths=[64, 144, 320, 784], depths=[1, 3, 8, 2],
                       group_widths=[16, 16, 16, 16])
    check_variant_vars("regnet_y_400mf", "regnet_x_8gf", widths=[80, 240, 720, 1920], depths=[2, 5, 15, 1],
                       group_widths=[80, 120, 120, 120], se_ratio=None)
