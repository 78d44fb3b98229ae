"""`partition_attention`: MaxViT's block and grid attention, against torchvision's PartitionAttentionLayer.

torchvision partitions the C×H×W map into groups of tokens, runs LayerNorm, attention, the MLP and the
residual adds on the partitioned tensor, and departitions. The spec below runs the same layer on the
channels-last H×W×C map, with the one op doing partition, attention and departition: its keys are
torchvision's, so the reference's state_dict loads with strict=True and the outputs must agree. The
same piece then goes through `-o .py`, ONNX Runtime, `check --deep` and `optimize`.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import archspec
from archspec.backends.python_source import emit_python
from archspec.ops import ChannelsLast

from .cases import op_call

SpecWriter = Callable[..., Path]

# One PartitionAttentionLayer of 64 channels on a 12×12 map: 3×3 windows (block) or a 3×3 grid of stride 4.
LAYER = """
    archspec: 1
    name: maxvit_part
    input: [64, 12, 12]
    vars: {mode: block}
    body:
      to_channels_last: permute([0, 2, 3, 1])
      attn_layer:
        - layernorm
        - partition_attention(3, 32, mode=$mode, scale=64 ** -0.5)
        - dropout(0.0)
      stochastic_dropout: drop_path(0.1)
      attn_residual: add(stochastic_dropout, to_channels_last)
      mlp_layer:
        - layernorm
        - linear(256)
        - gelu
        - linear(64)
        - dropout(0.0)
      mlp_stochastic_dropout: drop_path(0.1)
      mlp_residual: add(mlp_stochastic_dropout, attn_residual)
      to_channels_first: permute([0, 3, 1, 2])
"""
MODES = {"block": "window", "grid": "grid"}
"""archspec's mode: torchvision's partition_type."""


def _typed(write_spec: SpecWriter, mode: str = "block") -> archspec.TypedGraph:
    return archspec.compile(write_spec(textwrap.dedent(LAYER), "maxvit_part.yaml"), mode=mode)


def _reference(partition_type: str) -> nn.Module:
    from torchvision.models.maxvit import PartitionAttentionLayer

    torch.manual_seed(0)
    ref = PartitionAttentionLayer(64, 32, 3, partition_type, (12, 12), 4, nn.GELU, nn.LayerNorm, 0.0, 0.0, 0.1)
    for name, p in ref.named_parameters():  # the bias table's std of 0.02 and unit norms would hide a mistake
        if p.dim() < 2 or "relative_position_bias_table" in name:
            nn.init.normal_(p, 0.0, 0.5)
    return ref.eval()


def _outputs(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module.eval()(x)


@pytest.mark.parametrize("mode", ["block", "grid"])
def test_torchvisions_weights_load_and_the_outputs_agree(write_spec: SpecWriter, mode: str) -> None:
    ref = _reference(MODES[mode])
    typed = _typed(write_spec, mode)
    ours = archspec.build(typed)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 64, 12, 12)
    torch.testing.assert_close(_outputs(ours, x), _outputs(ref, x), rtol=1e-5, atol=1e-5)
    assert typed.total("params") == sum(p.numel() for p in ref.parameters())


def test_block_and_grid_differ(write_spec: SpecWriter) -> None:
    """The comparison above can fail: the other partition gives other outputs."""
    ref = _reference("window")
    ours = archspec.build(_typed(write_spec, "grid"))
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 64, 12, 12)
    assert (_outputs(ours, x) - _outputs(ref, x)).abs().max() > 1e-2


def test_the_index_is_a_persistent_buffer_equal_to_torchvisions(write_spec: SpecWriter) -> None:
    ours = archspec.build(_typed(write_spec)).state_dict()["attn_layer.1.relative_position_index"]
    theirs = _reference("window").state_dict()["attn_layer.1.relative_position_index"]
    assert ours.dtype == torch.int64 and torch.equal(ours, theirs)
    case = op_call("partition_attention", ChannelsLast((12, 12, 64)), 3, 32)
    assert case.op.buffer_bytes(case.attrs(), list(case.ins)) == ours.numel() * 8


def test_attention_runs_through_sdpa(write_spec: SpecWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    sdpa = F.scaled_dot_product_attention

    def counted(*args, **kwargs):
        calls.append(kwargs.get("attn_mask") is not None)
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counted)
    _outputs(archspec.build(_typed(write_spec)), torch.randn(1, 64, 12, 12))
    assert calls == [True]


def test_macs_count_the_projections_and_both_products() -> None:
    """Per position 4C² for queries, keys, values and the merge; 2·T·C for QKᵀ and AV over T tokens."""
    case = op_call("partition_attention", ChannelsLast((14, 14, 64)), 7, 32, mode="grid")
    attrs, ins = case.attrs(), list(case.ins)
    out = case.op.infer(attrs, ins)
    assert case.op.macs(attrs, ins, out) == 14 * 14 * (4 * 64 * 64 + 2 * 49 * 64)
    assert case.op.params(attrs, ins, out) == 4 * 64 * 64 + 4 * 64 + 13 * 13 * 2


def _error(write_spec: SpecWriter, input_shape: list[int], body: str) -> archspec.Diagnostic:
    layers = textwrap.indent(textwrap.dedent(body).strip(), "  ")
    path = write_spec(f"archspec: 1\nname: bad\ninput: {input_shape}\nbody:\n{layers}\n")
    with pytest.raises(archspec.SpecError) as info:
        archspec.compile(path)
    (diag,) = info.value.diagnostics
    return diag


def test_a_channels_first_input_is_a_located_error(write_spec: SpecWriter) -> None:
    diag = _error(write_spec, [64, 14, 14], "attn: partition_attention(7, 32)")
    assert (diag.code, diag.path, diag.loc.line) == ("shape-mismatch", "attn", 5)
    assert diag.expected == "H×W×C" and diag.found == "64×14×14 (C×H×W)"
    assert "permute([0, 2, 3, 1])" in (diag.hint or "")


@pytest.mark.parametrize("mode", ["block", "grid"])
def test_a_size_not_divisible_is_a_located_error(write_spec: SpecWriter, mode: str) -> None:
    diag = _error(write_spec, [64, 14, 21], f"""
        last: permute([0, 2, 3, 1])
        attn: partition_attention(4, 32, mode={mode})
    """)
    assert (diag.code, diag.path, diag.loc.line) == ("indivisible-size", "attn", 6)
    assert diag.expected == "H and W multiples of 4" and diag.found == "H×W = 14×21"
    assert diag.hint == ("change the input size or the partition size; the nearest inputs that work: 12×20 and "
                         "16×24; the smallest input this network accepts is 4×4 (given 14×21)")


def test_heads_that_do_not_divide_the_channels_are_refused(write_spec: SpecWriter) -> None:
    diag = _error(write_spec, [48, 7, 7], """
        last: permute([0, 2, 3, 1])
        attn: partition_attention(7, 32)
    """)
    assert diag.code == "shape-mismatch" and "head_dim 32" in (diag.expected or "")


def test_min_input_finds_the_smallest_divisible_map(write_spec: SpecWriter) -> None:
    """A 3×3/2 conv rounds up, so 5×5 makes the 3×3 map that 3×3 windows need (and 6×6 too, not 4×4)."""
    path = write_spec("""
        archspec: 1
        name: small
        input: [3, 12, 12]
        body:
          stem: conv(32, 3, s=2, p=1)
          last: permute([0, 2, 3, 1])
          attn: partition_attention(3, 16, mode=grid)
    """)
    assert archspec.min_input(archspec.compile(path).graph) == (5, 5)


def test_python_source_round_trips(write_spec: SpecWriter) -> None:
    typed = _typed(write_spec, "grid")
    source = emit_python(typed)
    assert "class PartitionAttention(nn.Module):" in source and "F.scaled_dot_product_attention(" in source
    assert 'PartitionAttention(64, 3, 32, mode="grid", scale=0.125)' in source
    namespace: dict = {}
    exec(compile(source, "maxvit_part", "exec"), namespace)
    cls = [line for line in source.splitlines() if line.startswith("class ")][-1][6:].split("(")[0]
    model = archspec.build(typed)
    ours = namespace[cls]()
    assert list(ours.state_dict()) == list(model.state_dict())
    ours.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 64, 12, 12)
    torch.testing.assert_close(_outputs(ours, x), _outputs(model, x), rtol=0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["block", "grid"])
def test_onnxruntime_gives_the_modules_outputs(write_spec: SpecWriter, tmp_path: Path, mode: str) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from archspec.export import save

    typed = _typed(write_spec, mode)
    module = archspec.build(typed)
    target = tmp_path / "part.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save(module, typed, target)
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    for batch in (2, 3):
        x = torch.randn(batch, 64, 12, 12)
        (got,) = session.run(None, {"x": x.numpy()})
        np.testing.assert_allclose(got, _outputs(module, x).numpy(), atol=1e-4, rtol=0)


def test_deep_check_and_optimize(write_spec: SpecWriter) -> None:
    from archspec.deep import deep_check

    typed = _typed(write_spec, "grid")
    report = deep_check(typed)
    assert report.ok, [d.message for d in report.diagnostics]
    module = archspec.build(typed)
    x = torch.randn(2, 64, 12, 12)
    torch.testing.assert_close(_outputs(archspec.optimize(module), x), _outputs(module, x), rtol=1e-4, atol=1e-5)

