"""Swin Transformer V1 and V2 (T/S/B): specs/ against torchvision's builders (tests/zoo/torchvision_parity.py,
torchvision_checks.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.ops import StochasticDepth

import archspec

from . import SPECS
from .torchvision_checks import check_counts, check_variant_vars, one_thread
from .torchvision_parity import check_meta, check_outputs, reference

BUILDERS = ["swin_t", "swin_s", "swin_b", "swin_v2_t", "swin_v2_s", "swin_v2_b"]


@pytest.mark.parametrize("builder", BUILDERS)
def test_keys_shapes_params_and_macs(builder: str) -> None:
    check_meta(builder)
    check_counts(builder, torch_counter=builder in ("swin_t", "swin_v2_t"))


# 64×64: stage maps of 16, 8, 4 and 2, so the first stages shift their windows (with the mask) over a map
# padded to a multiple of the window, and the last ones drop the shift, the window covering the whole map.
@pytest.mark.slow
@pytest.mark.parametrize("builder", ["swin_t", "swin_v2_t"])
def test_outputs_equal_for_the_smallest_variants(builder: str) -> None:
    with one_thread():
        check_outputs(builder, hw=64)


@pytest.mark.parametrize("builder", ["swin_t", "swin_v2_t"])
def test_norm_dropout_and_drop_path_settings(builder: str) -> None:
    with torch.device("meta"):
        ref = reference(builder)
    ours = dict(archspec.build(SPECS / f"{builder}.yaml", device="meta").named_modules())
    for name, module in ref.named_modules():
        if isinstance(module, nn.LayerNorm):
            assert ours[name].eps == module.eps, f"{builder}: {name}: {ours[name]}"
        elif isinstance(module, nn.Dropout):
            assert ours[name].p == module.p, f"{builder}: {name}: {ours[name]}"
        elif isinstance(module, StochasticDepth):  # one module on both residuals in torchvision, two here
            block = name.rpartition(".")[0]
            for ours_name in (name, f"{block}.mlp_stochastic_depth"):
                assert ours[ours_name].p == module.p, f"{builder}: {ours_name}: p {ours[ours_name].p}, {module.p}"
        elif type(module).__name__.startswith("ShiftedWindowAttention"):
            got = ours[name]
            assert (got.window, got.shift, got.heads) == (tuple(module.window_size), tuple(module.shift_size),
                                                          module.num_heads), f"{builder}: {name}"


def test_the_variant_numbers_are_vars() -> None:
    check_variant_vars("swin_t", "swin_b", embed_dim=128, depths=[2, 2, 18, 2], heads=[4, 8, 16, 32],
                       stochastic_depth_prob=0.5)
    check_variant_vars("swin_v2_t", "swin_v2_s", depths=[2, 2, 18, 2])


def test_torchvision_runs_at_the_smallest_input() -> None:
    """`min_input: [4, 4]` in swin_t.yaml: torchvision's Swin runs at 4×4 (a 1×1 map after the embedding)."""
    with torch.device("meta"):
        out = reference("swin_t").eval()(torch.empty(1, 3, 4, 4))
    assert out.shape == (1, 1000)


@pytest.mark.slow
def test_onnx_export_of_swin_t_runs_in_onnxruntime_at_a_small_input(tmp_path: Path) -> None:
    """At 64×64 the export meets every branch of the attention: shifted windows with the mask over a padded map,
    and windows covering the whole map (no shift). onnxruntime gives the module's outputs at batch 2 and 3."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from archspec.export import save

    torch.manual_seed(0)
    typed = archspec.compile(SPECS / "swin_t.yaml", input=[3, 64, 64])
    module = archspec.build(typed).eval()
    target = tmp_path / "swin_t.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save(module, typed, target)
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    for batch in (2, 3):
        x = torch.randn(batch, 3, 64, 64)
        with torch.no_grad():
            want = module(x).numpy()
        (got,) = session.run(None, {"x": x.numpy()})
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_python_source_writes_the_blocks_as_classes() -> None:
    """The blocks take their width, so `-o .py` writes one class per block kind (not each instance inline)."""
    from archspec.backends.python_source import emit_python

    for builder, classes in (("swin_t", ("SwinBlock", "PatchMerging")), ("swin_v2_t", ("SwinV2Block",
                                                                                      "PatchMergingV2"))):
        source = emit_python(archspec.compile(SPECS / f"{builder}.yaml"))
        for name in (*classes, "ShiftedWindowAttention"):
            assert f"class {name}(nn.Module):" in source, f"{builder}: {name}"
