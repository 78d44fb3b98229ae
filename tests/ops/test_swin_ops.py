"""Swin's ops, `window_attention` and `patch_gather`, against torchvision's modules; their counts and refusals.

The random cases (tests/ops/cases.py) already run both ops through their shape rules, torch and
torch's FLOP counter; here they meet torchvision's ShiftedWindowAttention(V2) and patch merging
gather on real tensors, with the same weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import torch
from torchvision.models.swin_transformer import ShiftedWindowAttention, ShiftedWindowAttentionV2, _patch_merging_pad

import archspec
from archspec.ops import ChannelsLast, ShapeError

from .cases import ERROR, apply, emit, op_call, random_inputs, rule_outcome, torch_outcome

SIZES = [  # (H, W, window, shift): shifted with the mask, padded, the shift dropped where the window covers the map
    (16, 16, 7, 3), (8, 8, 7, 3), (4, 4, 7, 3), (16, 16, 8, 4), (8, 8, 8, 4), (9, 13, 4, 2), (14, 14, 7, 0),
    (4, 16, 7, 3), (16, 5, 4, 2),  # shifted along one axis only
]


@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
@pytest.mark.parametrize(("h", "w", "window", "shift"), SIZES)
def test_window_attention_computes_torchvisions(v2: bool, h: int, w: int, window: int, shift: int) -> None:
    torch.manual_seed(0)
    c, heads = 12, 3
    ref = (ShiftedWindowAttentionV2 if v2 else ShiftedWindowAttention)(c, [window] * 2, [shift] * 2, heads).eval()
    with torch.no_grad():
        for p in ref.parameters():  # non-zero everywhere, the key bias of V2 too (which it must ignore)
            p.normal_()
    case = op_call("window_attention", ChannelsLast((h, w, c)), heads, window, shift=shift, v2=v2)
    ours = emit(case)
    assert isinstance(ours, torch.nn.Module)
    built = dict(ours.state_dict())
    ours.load_state_dict(ref.state_dict(), strict=True)
    for name, buffer in ref.named_buffers():  # persistent buffers: equal as built, not just as loaded
        assert torch.equal(built[name], buffer), name
    x = random_inputs(case, batch=2)[0]
    with torch.no_grad():
        want, got = ref(x), apply(ours, [x])
    assert rule_outcome(case) == tuple(got.shape[1:])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4 * want.abs().max().item())


def test_window_attention_takes_a_non_contiguous_input() -> None:
    """A channels-last view of an N×C×H×W tensor (what `permute` gives) at a size needing no padding."""
    case = op_call("window_attention", ChannelsLast((8, 8, 12)), 3, 4, shift=2)
    module = emit(case)
    x = torch.randn(2, 12, 8, 8).permute(0, 2, 3, 1)
    torch.testing.assert_close(apply(module, [x]), apply(module, [x.contiguous()]))


def test_v2_starts_with_a_zero_key_bias() -> None:
    module = emit(op_call("window_attention", ChannelsLast((8, 8, 12)), 3, 8, v2=True))
    assert isinstance(module, torch.nn.Module)
    assert torch.count_nonzero(module.qkv.bias[12:24]) == 0
    assert torch.allclose(module.logit_scale, torch.full((3, 1, 1), 10.0).log())


@pytest.mark.parametrize("hw", [(6, 6), (5, 7), (1, 1)])
def test_patch_gather_is_torchvisions_order_and_padding(hw: tuple[int, int]) -> None:
    case = op_call("patch_gather", ChannelsLast((*hw, 3)))
    x = random_inputs(case)[0]
    got = apply(emit(case), [x])
    assert torch.equal(got, _patch_merging_pad(x))
    assert rule_outcome(case) == tuple(got.shape[1:]) == ((hw[0] + 1) // 2, (hw[1] + 1) // 2, 12)


def test_swin_t_first_attention_counts() -> None:
    """56×56×96, 3 heads, 7×7 windows: 64 windows of 49 positions; qkv, proj, QKᵀ and AV in each."""
    case = op_call("window_attention", ChannelsLast((56, 56, 96)), 3, 7, shift=3)
    attrs, ins = case.attrs(), list(case.ins)
    out = case.op.infer(attrs, ins)
    assert case.op.params(attrs, ins, out) == 96 * 288 + 288 + 96 * 96 + 96 + 13 * 13 * 3
    assert case.op.macs(attrs, ins, out) == 64 * (49 * 96 * 288 + 49 * 96 * 96 + 2 * 49 * 49 * 96)
    v2 = op_call("window_attention", ChannelsLast((56, 56, 96)), 3, 8, v2=True)
    # 49 windows of 64 positions, and the bias MLP 2 → 512 → 3 over the 15×15 relative offsets
    assert v2.op.macs(v2.attrs(), ins, out) == 49 * (64 * 96 * 384 + 2 * 64 * 64 * 96) + 225 * (2 * 512 + 512 * 3)


@pytest.mark.parametrize("case", [
    op_call("window_attention", (12, 8, 6), 3, 4),  # torch would read C×H×W as H×W×C
    op_call("patch_gather", (12, 8, 6)),
], ids=str)
def test_channels_first_input_is_refused_where_torch_would_go_on(case) -> None:
    assert torch_outcome(case) != ERROR
    with pytest.raises(ShapeError) as info:
        case.op.infer(case.attrs(), list(case.ins))
    assert info.value.expected == "H×W×C" and info.value.found == "12×8×6"
    assert "permute([0, 2, 3, 1])" in (info.value.hint or "")


@pytest.mark.parametrize(("case", "expected"), [
    (op_call("window_attention", ChannelsLast((8, 8, 10)), 3, 4), "C a multiple of 3"),
    (op_call("window_attention", ChannelsLast((8, 8, 12)), 3, 4, shift=4), "shift below 4"),
    (op_call("window_attention", ChannelsLast((8, 8, 12)), 3, [4, 2], shift=[1, 2]), "shift below 4×2"),
], ids=str)
def test_window_attention_refusals(case, expected: str) -> None:
    assert torch_outcome(case) == ERROR
    with pytest.raises(ShapeError) as info:
        case.op.infer(case.attrs(), list(case.ins))
    assert info.value.expected == expected


def test_a_spec_without_the_permute_gets_a_located_error(write_spec: Callable[..., Path]) -> None:
    path = write_spec("""
        archspec: 1
        name: no_permute
        input: [3, 32, 32]
        body:
          embed: conv(24, 4, s=4)
          attn: window_attention(3, 4)
    """)
    result = archspec.check_file(path)
    assert not result.ok
    [diag] = result.diagnostics
    assert diag.loc is not None
    assert (diag.code, diag.path, diag.loc.line, diag.expected, diag.found) == (
        "shape-mismatch", "attn", 6, "H×W×C", "24×8×8")


SWIN_PART = """
    archspec: 1
    name: swin_part
    input: [3, 40, 40]
    vars: {v2: false}
    blocks:
      block:
        params: [heads, shift]
        body:
          norm1: layernorm
          attn: window_attention($heads, 4, shift=$shift, v2=$v2)
          attn_residual: add(attn, input)
          norm2: layernorm
          mlp: ["linear(2 * $in.c)", gelu, "linear($in.c)"]
          mlp_residual: add(mlp, attn_residual)
    body:
      features:
        - ["conv(12, 4, s=4)", "permute([0, 2, 3, 1])", layernorm]
        - ["block(3, 0)", "block(3, 2)"]
        - {body: {gather: patch_gather, norm: layernorm, reduction: "linear(24, bias=false)"}}
        - ["block(6, 0)", "block(6, 2)"]
      norm: layernorm
      permute: permute([0, 3, 1, 2])
      avgpool: adaptive_avgpool(1)
      flatten: flatten
      head: linear(10)
"""
"""A 10×10 map after the embedding: 4×4 windows over a map padded to 12×12, shifted with the mask, then 5×5
(padded to 8×8, still shifted) after the merging; V1 and V2 through `--set v2=true`."""


# ~30 s on 2 busy cores, nearly all of it the ONNX export


@pytest.mark.slow
@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
def test_a_swin_part_through_python_source_onnx_and_deep_check(write_spec: Callable[..., Path], v2: bool,
                                                               tmp_path: Path) -> None:
    import textwrap
    import warnings

    import numpy as np

    from archspec.backends.python_source import emit_python
    from archspec.deep import deep_check
    from archspec.export import save

    typed = archspec.compile(write_spec(textwrap.dedent(SWIN_PART), "swin_part.yaml"), v2=v2)
    assert deep_check(typed).ok
    torch.manual_seed(0)
    model = archspec.build(typed).eval()
    source = emit_python(typed)
    assert "class ShiftedWindowAttention(nn.Module):" in source and "def patch_gather(" in source
    namespace: dict = {}
    exec(compile(source, "swin_part", "exec"), namespace)
    ours = namespace["SwinPart"]().eval()
    ours.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *typed.input_shape)
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-5)
    if not v2:
        return  # V1's export: swin_t's at 64×64 (tests/zoo/test_tv_swin.py)
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    target = tmp_path / "swin_part.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save(model, typed, target)
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    x3 = torch.randn(3, *typed.input_shape)
    with torch.no_grad():
        want = model(x3).numpy()
    (got,) = session.run(None, {"x": x3.numpy()})
    np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max(), rtol=0)
