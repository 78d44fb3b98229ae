"""Vision Transformer B/16, B/32, L/16, L/32, H/14: specs/ against torchvision's builders
(tests/zoo/torchvision_parity.py, torchvision_checks.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archspec

from . import SPECS
from .torchvision_checks import check_counts, check_variant_vars, one_thread
from .torchvision_parity import check_meta, check_outputs, reference

BUILDERS = ["vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_params_and_macs(builder: str) -> None:
    check_meta(builder)
    check_counts(builder, torch_counter=builder == "vit_b_32")


@pytest.mark.slow
def test_outputs_equal_for_the_smallest_variant() -> None:
    """B/32 at 64×64 (torchvision's image_size=64): 4 patches and the class token."""
    with one_thread():
        check_outputs("vit_b_32", hw=64, image_size=64)


def test_norm_dropout_and_attention_settings() -> None:
    with torch.device("meta"):
        ref = reference("vit_b_16", dropout=0.1, attention_dropout=0.2)
    spec = archspec.compile(SPECS / "vit_b_16.yaml", dropout=0.1, attention_dropout=0.2)
    ours = dict(archspec.build(spec, device="meta").named_modules())
    for name, module in ref.named_modules():
        if isinstance(module, nn.LayerNorm):
            assert ours[name].eps == module.eps == 1e-6, f"{name}: {ours[name]}"
        elif isinstance(module, nn.Dropout):
            assert ours[name].p == module.p, f"{name}: {ours[name]}"
        elif isinstance(module, nn.MultiheadAttention):
            got = ours[name]
            assert (got.num_heads, got.dropout, got.batch_first) == (module.num_heads, module.dropout, True), name


def test_the_variant_numbers_are_vars() -> None:
    check_variant_vars("vit_b_16", "vit_l_32", patch_size=32, num_layers=24, num_heads=16, hidden_dim=1024,
                       mlp_dim=4096)
