"""Vision Transformer B/16, B/32, L/16, L/32, H/14: specs/ against torchvision's builders
(tests/zoo/torchvision_parity.py, torchvision_checks.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
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


def _small_b_32(**variables: int) -> archspec.TypedGraph:
    return archspec.compile(SPECS / "vit_b_32.yaml", input=[3, 64, 64], **variables)


@pytest.mark.slow
def test_onnxruntime_gives_the_outputs_of_the_small_b_32(tmp_path: Path) -> None:
    """At 64×64 and with 2 of its 12 (identical) encoder layers: the exporter's time grows with every layer
    (20 s more for all 12 on 2 cores), and two show the layers chain."""
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    from archspec.export import save

    typed = _small_b_32(num_layers=2)
    torch.manual_seed(0)
    module = archspec.build(typed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the exporter must be quiet
        save(module, typed, tmp_path / "vit.onnx")
    session = ort.InferenceSession(str(tmp_path / "vit.onnx"), providers=["CPUExecutionProvider"])
    for batch in (2, 3):
        x = torch.randn(batch, 3, 64, 64)
        with torch.no_grad():
            want = module.eval()(x).numpy()
        (got,) = session.run(None, {"x": x.numpy()})
        assert got.shape == want.shape and np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


@pytest.mark.slow
def test_python_source_of_the_small_b_32_loads_the_weights_and_agrees() -> None:
    from archspec.backends.python_source import emit_python

    typed = _small_b_32()
    source = emit_python(typed)
    namespace: dict = {}
    exec(compile(source, "vit_b_32.py", "exec"), namespace)
    torch.manual_seed(0)
    module = archspec.build(typed).eval()
    with torch.device("meta"):
        theirs = namespace["VitB32"]()
    theirs.load_state_dict(module.state_dict(), strict=True, assign=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(theirs.eval()(x), module(x), rtol=0, atol=1e-5)


def test_heads_encoder_and_layers_are_free_names() -> None:
    """torchvision's ViT modules are named `heads`, `encoder`, `encoder.layers`: none is reserved."""
    typed = archspec.compile(SPECS / "vit_b_16.yaml")
    assert {"heads", "encoder", "encoder/layers"} <= set(typed.net.scopes)


def test_a_reserved_name_says_why_and_lists_only_real_collisions(write_spec) -> None:
    path = write_spec("""
        archspec: 1
        name: reserved
        input: [8]
        body:
          heads: linear(4)
          training: linear(2)
    """)
    with pytest.raises(archspec.SpecError) as info:
        archspec.compile(path)
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.loc.line) == ("reserved-name", 6) and "'training'" in diag.message
    listed = set((diag.expected or "").split("(", 1)[1].split(")", 1)[0].split(", "))
    assert "training" in listed and not {"heads", "encoder", "layers"} & listed


def test_min_input_is_one_patch() -> None:
    assert archspec.compile(SPECS / "vit_b_16.yaml").smallest_input() == (16, 16)
    assert archspec.compile(SPECS / "vit_h_14.yaml").smallest_input() == (14, 14)


def test_an_image_size_not_a_multiple_of_the_patch_is_a_located_error() -> None:
    """torchvision's ViT refuses such a size; the patch conv would otherwise drop its last rows and columns."""
    with torch.device("meta"):
        reference("vit_b_16", image_size=224)
        with pytest.raises(AssertionError, match="divisible by patch size"):
            reference("vit_b_16", image_size=230)
    with pytest.raises(archspec.SpecError) as info:
        archspec.compile(SPECS / "vit_b_16.yaml", input=[3, 230, 230])
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.path, diag.loc.line) == ("indivisible-size", "conv_proj", 18)
    assert diag.message == ("16×16 patches (conv 16×16/16) leave the last 6 rows and 6 columns of a 230×230 "
                            "input uncovered")
    assert diag.expected == "H and W multiples of 16" and diag.found == "H×W = 230×230"
    assert diag.hint == ("change the input size or the patch size; the nearest inputs that work: 224×224 and "
                         "240×240; the smallest input this network accepts is 16×16 (given 230×230)")


def test_the_nearest_sizes_move_each_axis_on_its_own() -> None:
    with pytest.raises(archspec.SpecError) as info:
        archspec.compile(SPECS / "vit_b_32.yaml", input=[3, 224, 200])
    (diag,) = info.value.diagnostics
    assert diag.found == "H×W = 224×200" and "the nearest inputs that work: 224×192 and 224×224;" in (diag.hint or "")
