"""Token sequences (L×D) and the ViT ops: a small Vision Transformer written as a spec against
torchvision's `VisionTransformer` of the same sizes, located refusals of the wrong layout, `$in.l`/`$in.d`,
and the token shape through summary, draw and `--min-input`.

Each op's shape rule and counts against torch (and its FLOP counter) are in test_shape_rules.py and
test_counts.py, drawn from tests/ops/cases.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import torch

import archspec
from archspec.backends.python_source import emit_python
from archspec.draw import build_view
from archspec.ops import REGISTRY, ChannelsLast, ShapeError, Tokens
from archspec.ops.common import fmt_shape
from archspec.ops.registry import channel_count
from archspec.summary import paper_size

from .cases import ERROR, apply, emit, op_call, random_inputs, rule_outcome, torch_outcome
from .test_cnn_parts import _same_outputs

SpecWriter = Callable[..., Path]

MINI_VIT = """
    archspec: 1
    name: mini_vit
    input: [3, 32, 32]
    blocks:
      encoder_block:
        params: [heads, mlp]
        body:
          ln_1: layernorm(eps=1e-6)
          self_attention: self_attention($heads)
          dropout: dropout(0.0)
          attended: add(dropout, input)
          ln_2: layernorm(eps=1e-6)
          mlp: [linear($mlp), gelu, dropout(0.0), linear($in.d), dropout(0.0)]
          residual: add(mlp, attended)
    body:
      conv_proj: conv(32, 8, s=8)
      tokens: to_tokens
      class_token: class_token
      encoder:
        pos_embedding: pos_embedding
        dropout: dropout(0.0)
        layers: {repeat: 2, names: "encoder_layer_{i}", body: "encoder_block(4, 64)"}
        ln: layernorm(eps=1e-6)
      class_out: select_token(0)
      heads:
        head: linear(10)
"""


def _mini(write_spec: SpecWriter) -> archspec.TypedGraph:
    return archspec.compile(write_spec(MINI_VIT))


def _reference() -> torch.nn.Module:
    from torchvision.models import VisionTransformer

    return VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=64,
                             num_classes=10)


def test_torchvisions_weights_load_and_the_outputs_agree(write_spec: SpecWriter) -> None:
    torch.manual_seed(0)
    ref = _reference().eval()
    for p in (ref.class_token, ref.heads.head.weight):  # torchvision starts both at zero
        torch.nn.init.normal_(p)
    ours = archspec.build(_mini(write_spec)).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    assert ours.typed.shape("class_token") == Tokens((17, 32))


def test_python_source_round_trips(write_spec: SpecWriter) -> None:
    typed = _mini(write_spec)
    source = _same_outputs(emit_python(typed), typed)
    assert "class SelfAttention(nn.MultiheadAttention):" in source and "def to_tokens(" in source
    assert "self.class_token = nn.Parameter(torch.zeros(1, 1, 32))" in source
    assert "x = prepend_token(x, self.class_token)" in source and "x[:, 0]" in source
    assert "self.encoder.pos_embedding = nn.Parameter(torch.empty(1, 17, 32).normal_(std=0.02))" in source


def test_deep_check_confirms_every_shape(write_spec: SpecWriter) -> None:
    from archspec.deep import deep_check

    report = deep_check(_mini(write_spec))
    assert report.ok, [d.message for d in report.diagnostics]


def test_the_optimised_module_computes_attention_through_sdpa(write_spec: SpecWriter) -> None:
    from archspec.ops.modules import SDPAttention

    module = archspec.build(_mini(write_spec)).eval()
    fast = archspec.optimize(module)
    assert fast.passes["sdpa_attention"] == 2
    assert isinstance(fast.get_submodule("encoder.layers.encoder_layer_1.self_attention"), SDPAttention)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), module(x), rtol=1e-4, atol=1e-5)


# -- the shape: a marker, D its channel axis ------------------------------------------------------


def test_tokens_never_equal_a_plain_shape_or_channels_last() -> None:
    assert Tokens((4, 8)) == Tokens((4, 8)) and hash(Tokens((4, 8))) == hash(Tokens((4, 8)))
    assert Tokens((4, 8)) != (4, 8) and (4, 8) != Tokens((4, 8))
    assert Tokens((2, 2, 8)) != ChannelsLast((2, 2, 8))
    assert len({Tokens((4, 8)), (4, 8)}) == 2
    assert channel_count(Tokens((197, 768))) == 768
    assert fmt_shape(Tokens((197, 768))) == "197×768 (tokens)"
    assert paper_size(Tokens((197, 768))) == "197×768"


@pytest.mark.parametrize(("case", "expected"), [
    (op_call("to_tokens", (768, 14, 14)), Tokens((196, 768))),
    (op_call("class_token", Tokens((196, 768))), Tokens((197, 768))),
    (op_call("pos_embedding", Tokens((197, 768))), Tokens((197, 768))),
    (op_call("self_attention", Tokens((197, 768)), 12), Tokens((197, 768))),
    (op_call("layernorm", Tokens((197, 768))), Tokens((197, 768))),
    (op_call("linear", Tokens((197, 768)), 3072), Tokens((197, 3072))),
    (op_call("gelu", Tokens((197, 3072))), Tokens((197, 3072))),
    (op_call("dropout", Tokens((197, 768))), Tokens((197, 768))),
    (op_call("drop_path", Tokens((197, 768)), 0.1), Tokens((197, 768))),
    (op_call("layer_scale", Tokens((197, 768))), Tokens((197, 768))),
    (op_call("add", [Tokens((197, 768)), Tokens((197, 768))]), Tokens((197, 768))),
    (op_call("mul", [Tokens((197, 768)), Tokens((1, 768))]), Tokens((197, 768))),
    (op_call("select_token", Tokens((197, 768))), (768,)),
    (op_call("mean_tokens", Tokens((197, 768))), (768,)),
], ids=str)
def test_ops_over_the_last_axis_keep_the_marker(case, expected) -> None:
    out = case.op.infer(case.attrs(), list(case.ins))
    assert out == expected and type(out) is type(expected)
    assert torch_outcome(case) == tuple(expected)


REFUSED = [
    # spatial ops and ops on the channels of C×H×W: tokens have no H×W, and D is their last axis
    (op_call("conv", Tokens((16, 32)), 8, 1), "C×H×W"),
    (op_call("maxpool", Tokens((16, 32)), 2), "C×H×W"),
    (op_call("global_avgpool", Tokens((16, 32))), "C×H×W"),
    (op_call("bn", Tokens((16, 32))), "C×H×W or F"),
    (op_call("chunk", Tokens((16, 32)), 2), "C×H×W or F"),
    (op_call("concat", [Tokens((16, 32)), Tokens((16, 32))]), "channels-first inputs"),
    (op_call("permute", Tokens((16, 32)), [0, 2, 3, 1]), "C×H×W or H×W×C"),
    (op_call("add", [Tokens((16, 32)), (16, 32)]), "equal shapes"),
    (op_call("mul", [Tokens((4, 4)), ChannelsLast((1, 4, 4))]), "inputs of one layout (C×H×W, H×W×C or L×D)"),
    # token ops refuse what is not a token sequence
    (op_call("to_tokens", ChannelsLast((4, 4, 8))), "D×h×w"),
    (op_call("to_tokens", Tokens((16, 32))), "D×h×w"),
    (op_call("class_token", (32, 4, 4)), "L×D (tokens)"),
    (op_call("pos_embedding", (32,)), "L×D (tokens)"),
    (op_call("self_attention", (32, 4, 4), 4), "L×D (tokens)"),
    (op_call("select_token", (32, 4, 4)), "L×D (tokens)"),
    (op_call("mean_tokens", ChannelsLast((4, 4, 32))), "L×D (tokens)"),
    # and the sizes
    (op_call("self_attention", Tokens((16, 30)), 4), "a width divisible by 4"),
    (op_call("select_token", Tokens((5, 8)), 5), "index < 5"),
]


@pytest.mark.parametrize(("case", "expected"), REFUSED, ids=str)
def test_a_wrong_layout_is_refused_naming_expected_and_found(case, expected: str) -> None:
    with pytest.raises(ShapeError) as info:
        case.op.infer(case.attrs(), list(case.ins))
    assert info.value.expected == expected
    assert info.value.found and info.value.code == "shape-mismatch"


@pytest.mark.parametrize("case", [
    op_call("to_tokens", ChannelsLast((4, 4, 8))),        # torch would read H×W×C as C×H×W
    op_call("mean_tokens", (4, 8, 8)),                    # torch would average C×H×W over C
], ids=str)
def test_rule_is_stricter_than_torch(case) -> None:
    assert rule_outcome(case) == ERROR
    assert torch_outcome(case) != ERROR


def test_a_conv_after_to_tokens_is_a_located_error(write_spec: SpecWriter) -> None:
    path = write_spec("""
        archspec: 1
        name: wrong_layout
        input: [3, 32, 32]
        body:
          patches: conv(16, 8, s=8)
          tokens: to_tokens
          pool: maxpool(2)
    """)
    with pytest.raises(archspec.SpecError) as info:
        archspec.compile(path)
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.path, diag.loc.line, str(diag.loc.file)) == ("shape-mismatch", "pool", 7, str(path))
    assert diag.expected == "C×H×W" and diag.found == "16×16 (tokens)"
    assert "to_tokens" in (diag.hint or "")


def test_attention_over_an_image_is_a_located_error(write_spec: SpecWriter) -> None:
    path = write_spec("""
        archspec: 1
        name: no_tokens
        input: [3, 32, 32]
        body:
          patches: conv(16, 8, s=8)
          attention: self_attention(4)
    """)
    with pytest.raises(archspec.SpecError) as info:
        archspec.compile(path)
    (diag,) = info.value.diagnostics
    assert (diag.code, diag.path, diag.loc.line) == ("shape-mismatch", "attention", 6)
    assert diag.expected == "L×D (tokens)" and diag.found == "16×4×4"
    assert "to_tokens" in (diag.hint or "")


# -- $in of tokens ----------------------------------------------------------------------------------


def test_in_of_tokens_has_l_and_d(write_spec: SpecWriter) -> None:
    typed = archspec.compile(write_spec("""
        archspec: 1
        name: reads_tokens
        input: [6, 4, 4]
        blocks:
          widen: {body: ["linear(2 * $in.d)", "linear($in.l + 1)"]}
        body:
          tokens: to_tokens
          mlp: widen
    """))
    assert typed.shape("mlp/0") == Tokens((16, 12)) and typed.shape("mlp/1") == Tokens((16, 17))


def test_in_c_of_tokens_names_the_fields_it_has(write_spec: SpecWriter) -> None:
    path = write_spec("""
        archspec: 1
        name: wrong_field
        input: [8, 4, 4]
        blocks:
          widen: {body: "linear($in.c)"}
        body:
          tokens: to_tokens
          mlp: widen
    """)
    with pytest.raises(archspec.SpecError) as info:
        archspec.compile(path)
    (diag,) = info.value.diagnostics
    assert diag.code == "wrong-type" and ".l, .d" in (diag.hint or "")


# -- tools show the token shape ----------------------------------------------------------------------


def test_a_collapsed_encoder_block_has_token_shapes_on_its_edges(write_spec: SpecWriter) -> None:
    view = build_view(_mini(write_spec), depth=2)
    labels = {(e.tail, e.head): e.label for e in view.edges}
    block = "block.encoder/layers/encoder_layer_0"
    assert labels["encoder/dropout", block] == "17×32 (tokens)"
    assert labels[block, "block.encoder/layers/encoder_layer_1"] == "17×32 (tokens)"
    assert view.boxes[block].lines[-1].startswith("17×32 (tokens) · ")


def test_min_input_is_one_patch(write_spec: SpecWriter) -> None:
    assert archspec.min_input(_mini(write_spec).graph) == (8, 8)


def test_every_token_op_has_a_label_and_a_python_form() -> None:
    for name in ("to_tokens", "class_token", "pos_embedding", "self_attention", "select_token", "mean_tokens"):
        assert REGISTRY[name].source is not None and REGISTRY[name].label is not None, name


def test_select_and_mean_compute_what_torch_does() -> None:
    case = op_call("select_token", Tokens((5, 8)), 2)
    x = random_inputs(case)
    torch.testing.assert_close(apply(emit(case), x), x[0][:, 2], rtol=0, atol=0)
    mean = op_call("mean_tokens", Tokens((5, 8)))
    torch.testing.assert_close(apply(emit(mean), x), x[0].mean(1), rtol=0, atol=0)


def test_memory_estimate_is_the_bytes_of_the_built_module(write_spec: SpecWriter) -> None:
    from archspec.memory import estimate

    typed = _mini(write_spec)
    module = archspec.build(typed, device="meta")
    est = estimate(typed)
    assert est.total == sum(t.numel() * t.element_size() for t in module.state_dict().values())
    attention = "encoder/layers/encoder_layer_0/self_attention"
    assert est.nodes[attention] == 4 * (4 * 32 * 32 + 4 * 32)
    assert est.nodes["class_token"] == 4 * 32 and est.nodes["encoder/pos_embedding"] == 4 * 17 * 32


def test_profile_puts_attention_time_on_its_block(write_spec: SpecWriter) -> None:
    from archspec.profile import OTHER, profile

    path = write_spec(MINI_VIT)
    for optimize in (False, True):
        table = profile(path, depth=3, optimize=optimize, repeat=1, warmup=0)
        rows = {r["path"]: r for r in table.rows}
        assert set(rows) - {OTHER} >= {"encoder/layers/encoder_layer_0", "encoder/layers/encoder_layer_1"}
        assert rows["encoder/layers/encoder_layer_0"]["time_ms"] > 0
