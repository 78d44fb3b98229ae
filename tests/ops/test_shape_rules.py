"""Every op's shape rule against the shape torch actually produces.

For each registered op, random calls (valid and invalid; argument names drawn
among the aliases, optional arguments sometimes left out) go through the pure
shape rule and through the op's torch emitter on a real CPU tensor. Both must
give the same output shape, or both must refuse: the rule with a `ShapeError`,
torch with an exception. Hand-picked edge cases pin the arithmetic down further.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import pytest
import torch
from hypothesis import given

from archspec.ops import REGISTRY, ChannelsLast, ShapeError
from archspec.ops.activation import KINDS

from .cases import (
    CASES,
    ERROR,
    Case,
    Outcome,
    apply,
    emit,
    examples,
    op_call,
    random_inputs,
    rule_outcome,
    torch_outcome,
)

SHAPE_EXAMPLES = {"conv": 300, "maxpool": 300, "avgpool": 200, "concat": 60, "add": 60}
"""Hypothesis examples per op: most for the ops with the most arithmetic; 30 for the others."""


def test_every_op_has_cases() -> None:
    assert sorted(CASES) == sorted(REGISTRY), "add a strategy for each new op to tests/ops/cases.py"


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_shape_rule_agrees_with_torch(name: str) -> None:
    @examples(SHAPE_EXAMPLES.get(name, 30))
    @given(case=CASES[name])
    def check(case: Case) -> None:
        assert rule_outcome(case) == torch_outcome(case), str(case)

    check()


EDGE_CASES: list[tuple[Case, Outcome]] = [
    # ceil mode: the last window would start in the right padding, so PyTorch drops it
    (op_call("maxpool", (1, 5, 5), k=2, s=2, p=1, ceil=True), (1, 3, 3)),
    (op_call("avgpool", (1, 5, 5), k=2, s=2, p=1, ceil=True), (1, 3, 3)),
    (op_call("maxpool", (1, 1, 1), k=2, s=2, p=1, ceil=True), (1, 1, 1)),
    (op_call("maxpool", (1, 4, 4), k=2, s=3, p=1, ceil=True), (1, 2, 2)),
    # ceil mode keeps a last window that starts inside the input and runs past it
    (op_call("maxpool", (1, 6, 6), k=3, s=2, ceil=True), (1, 3, 3)),
    (op_call("maxpool", (1, 6, 6), k=3, s=2), (1, 2, 2)),
    (op_call("avgpool", (1, 6, 6), k=3, s=2, p=1, ceil=True), (1, 4, 4)),
    # GoogLeNet: 112 → 56 and 14 → 7 with ceil mode; 14 → 6 without
    (op_call("maxpool", (2, 112, 112), k=3, s=2, ceil=True), (2, 56, 56)),
    (op_call("maxpool", (2, 14, 14), k=3, s=2, ceil=True), (2, 7, 7)),
    (op_call("maxpool", (2, 14, 14), k=3, s=2), (2, 6, 6)),
    (op_call("maxpool", (2, 7, 7), k=3, s=1, p=1, ceil=True), (2, 7, 7)),
    # stride defaults to the kernel; dilation; asymmetric windows
    (op_call("maxpool", (1, 9, 9), k=3), (1, 3, 3)),
    (op_call("maxpool", (1, 5, 5), k=3, d=2, p=1), (1, 1, 1)),
    (op_call("maxpool", (1, 7, 9), k=[1, 3], s=[1, 2], p=[0, 1]), (1, 7, 5)),
    (op_call("avgpool", (1, 8, 8), k=2, p=1, count_include_pad=False), (1, 5, 5)),
    # pooling padding may be at most half the (undilated) kernel
    (op_call("maxpool", (1, 8, 8), k=4, p=2), (1, 3, 3)),
    (op_call("maxpool", (1, 8, 8), k=2, p=2), ERROR),
    (op_call("maxpool", (1, 8, 8), k=3, p=2), ERROR),
    (op_call("maxpool", (1, 8, 8), k=1, p=1), ERROR),
    (op_call("maxpool", (1, 8, 8), k=3, p=2, d=2), ERROR),
    (op_call("avgpool", (1, 8, 8), k=3, p=[1, 2]), ERROR),
    (op_call("maxpool", (1, 2, 2), k=3), ERROR),
    # conv: asymmetric kernels (Inception v3's 1×7 and 7×1), 'same', 'valid', dilation, groups
    (op_call("conv", (8, 17, 17), 8, [1, 7], p=[0, 3]), (8, 17, 17)),
    (op_call("conv", (8, 17, 17), 8, [7, 1], p=[3, 0]), (8, 17, 17)),
    (op_call("conv", (3, 5, 6), 4, 4, p="same"), (4, 5, 6)),
    (op_call("conv", (3, 5, 6), 4, [2, 5], p="same", d=[3, 1]), (4, 5, 6)),
    (op_call("conv", (3, 5, 6), 4, 3, p="valid"), (4, 3, 4)),
    (op_call("conv", (3, 5, 6), 4, 3, s=2, p="same"), ERROR),
    (op_call("conv", (3, 2, 2), 4, 3), ERROR),
    (op_call("conv", (3, 5, 5), 4, 3, d=2), (4, 1, 1)),
    (op_call("conv", (3, 4, 4), 4, 3, d=2), ERROR),
    (op_call("conv", (3, 1, 1), 4, 1, s=2), (4, 1, 1)),
    (op_call("conv", (3, 224, 224), 64, 7, s=2, p=3), (64, 112, 112)),
    (op_call("conv", (4, 6, 6), 6, 3, groups=2), (6, 4, 4)),
    (op_call("conv", (4, 6, 6), 6, 3, groups=3), ERROR),
    (op_call("conv", (4, 6, 6), 3, 3, groups=2), ERROR),
    # spatial ops refuse a flat input
    (op_call("conv", (4,), 3, 1), ERROR),
    # exact=true: windows that tile the input (a ViT's patches), as torch computes them
    (op_call("conv", (3, 224, 224), 768, 16, s=16, exact=True), (768, 14, 14)),
    (op_call("conv", (3, 224, 192), 8, [16, 32], s=[16, 32], exact=True), (8, 14, 6)),
    (op_call("conv", (3, 7, 7), 8, 3, s=2, p=1, exact=True), (8, 4, 4)),
    (op_call("maxpool", (4,), 1), ERROR),
    (op_call("global_avgpool", (4,)), ERROR),
    # merges
    (op_call("concat", [(64, 28, 28), (32, 28, 28), (16, 28, 28)]), (112, 28, 28)),
    (op_call("concat", [(64, 28, 28), (32, 27, 28)]), ERROR),
    (op_call("concat", [(64, 28, 28), (32, 28, 27)]), ERROR),
    (op_call("concat", [(64, 28, 28), (32,)]), ERROR),
    (op_call("concat", [(10,), (6,)]), (16,)),
    (op_call("add", [(8, 4, 4), (8, 4, 4), (8, 4, 4)]), (8, 4, 4)),
    (op_call("add", [(8, 4, 4), (8, 4, 5)]), ERROR),
    (op_call("add", [(8, 4, 4), (9, 4, 4)]), ERROR),
    # the rest
    (op_call("flatten", (3, 4, 5)), (60,)),
    (op_call("flatten", (7,)), (7,)),
    (op_call("linear", (60,), 10), (10,)),
    (op_call("bn", (7,)), (7,)),
    (op_call("bn", (7, 3, 3), affine=False), (7, 3, 3)),
    (op_call("lrn", (16, 3, 3), 5), (16, 3, 3)),
    (op_call("adaptive_avgpool", (3, 5, 7), [None, 3]), (3, 5, 3)),
    (op_call("adaptive_maxpool", (3, 2, 2), 4), (3, 4, 4)),
    (op_call("adaptive_avgpool", (3, 17, 17), 4), (3, 4, 4)),
    (op_call("global_avgpool", (1024, 7, 7)), (1024, 1, 1)),
    (op_call("scale", (5, 2, 2), 0.17), (5, 2, 2)),
    # mul broadcasts as torch does: the SE gate
    (op_call("mul", [(16, 1, 1), (16, 7, 7)]), (16, 7, 7)),
    (op_call("mul", [(16, 7, 7), (1, 7, 7), (16, 1, 7)]), (16, 7, 7)),
    (op_call("mul", [(16, 7, 7), (8, 1, 1)]), ERROR),
    # channel splits as torch.chunk and slicing cut them
    (op_call("chunk", (116, 28, 28), 2, 1), (58, 28, 28)),
    (op_call("chunk", (7, 2, 2), 3, 2), (1, 2, 2)),
    (op_call("chunk", (4, 2, 2), 3, 2), ERROR),  # torch cuts 4 into 2 chunks of 2
    (op_call("slice", (10, 3, 3), 2, 5), (3, 3, 3)),
    (op_call("slice", (10, 3, 3), 4), (6, 3, 3)),
    (op_call("slice", (10, 3, 3), 4, 11), ERROR),
    (op_call("channel_shuffle", (116, 28, 28), 2), (116, 28, 28)),
    (op_call("channel_shuffle", (9, 2, 2), 2), ERROR),
    (op_call("mean", (1280, 7, 7)), (1280,)),
    (op_call("layernorm", (96, 1, 1)), (96, 1, 1)),
    (op_call("drop_path", (8, 4, 4), 0.1), (8, 4, 4)),
]


@pytest.mark.parametrize(("case", "expected"), EDGE_CASES, ids=str)
def test_edge_case(case: Case, expected: Outcome) -> None:
    assert rule_outcome(case) == expected
    assert torch_outcome(case) == expected


def mismatches(cases: Iterable[Case]) -> list[str]:
    return [f"{c}: rule {r}, torch {t}" for c in cases if (r := rule_outcome(c)) != (t := torch_outcome(c))]


def test_pool_arithmetic_on_every_small_size() -> None:
    """Every H up to 12 for every small window: the vertical size of an H×1 input, valid or not."""
    grid = itertools.product(range(1, 13), range(1, 6), range(1, 5), range(4), (False, True))
    cases = [op_call(name, (1, size, 1), [k, 1], s=[s, 1], p=[p, 0], ceil=ceil, **({"d": [d, 1]} if d else {}))
             for size, k, s, p, ceil in grid for name, d in [("avgpool", 0), ("maxpool", 1), ("maxpool", 2)]]
    assert mismatches(cases) == []


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv_arithmetic_on_every_small_size() -> None:
    grid = itertools.product(range(1, 11), range(1, 6), range(1, 4), [0, 1, 2, "same", "valid"], range(1, 4))
    cases = [op_call("conv", (1, size, 1), 1, [k, 1], s=[s, 1], p=p if isinstance(p, str) else [p, 0], d=[d, 1])
             for size, k, s, p, d in grid]
    assert mismatches(cases) == []


ERROR_CODES = [
    (op_call("conv", (3, 2, 2), 4, 3), "input-too-small"),
    (op_call("maxpool", (1, 2, 2), 3), "input-too-small"),
    (op_call("avgpool", (1, 3, 1), 2, s=1), "input-too-small"),
    (op_call("maxpool", (1, 8, 8), 3, p=2), "shape-mismatch"),
    (op_call("conv", (3, 5, 6), 4, 3, s=2, p="same"), "shape-mismatch"),
    (op_call("conv", (3, 230, 230), 768, 16, s=16, exact=True), "indivisible-size"),
    (op_call("conv", (4, 6, 6), 6, 3, groups=3), "shape-mismatch"),
    (op_call("concat", [(64, 28, 28), (32, 27, 28)]), "shape-mismatch"),
    (op_call("linear", (4, 3, 4), 5), "shape-mismatch"),
    (op_call("mul", [(16, 7, 7), (8, 1, 1)]), "shape-mismatch"),
    (op_call("permute", (3, 4, 5), [0, 2, 1, 3]), "shape-mismatch"),
]


@pytest.mark.parametrize(("case", "code"), ERROR_CODES, ids=str)
def test_refusal_code(case: Case, code: str) -> None:
    """`input-too-small` (for which inference computes the smallest input that works) or `shape-mismatch`."""
    with pytest.raises(ShapeError) as info:
        case.op.infer(case.attrs(), list(case.ins))
    assert info.value.code == code


# Refusals where torch would go on: each is a deliberate choice, not a disagreement.
STRICTER_THAN_TORCH = [
    # torch's Linear reads the last dimension of any tensor; archspec wants an explicit flatten first
    op_call("linear", (4, 3, 4), 5),
    # torch broadcasts; a residual connection whose shapes differ is a mistake in a spec
    op_call("add", [(8, 1, 1), (8, 4, 4)]),
    op_call("add", [(8, 4, 4), (4,)]),
    # a flat F times C×H×W: torch lines the batch axis up with H; archspec wants inputs of one rank
    op_call("mul", [(4,), (3, 4, 4)]),
    # an order that leaves the channels in the middle, which no op after it could read
    op_call("permute", (3, 4, 5), [0, 2, 1, 3]),
    # a conv on a channels-last tensor: torch would read H as the channels
    op_call("conv", ChannelsLast((3, 4, 3)), 2, 1),
    # exact=true: torch drops the rows and columns the windows leave out (torchvision's ViT refuses them)
    op_call("conv", (3, 230, 224), 768, 16, s=16, exact=True),
    op_call("conv", (3, 224, 232), 8, [16, 32], s=[16, 32], exact=True),
    op_call("conv", (3, 8, 7), 8, 3, s=2, p=1, exact=True),
]


@pytest.mark.parametrize("case", STRICTER_THAN_TORCH, ids=str)
def test_rule_is_stricter_than_torch(case: Case) -> None:
    assert rule_outcome(case) == ERROR
    assert torch_outcome(case) != ERROR


NAMESAKES = {"relu": torch.nn.ReLU, "relu6": torch.nn.ReLU6, "gelu": torch.nn.GELU, "silu": torch.nn.SiLU,
             "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "hardswish": torch.nn.Hardswish,
             "hardsigmoid": torch.nn.Hardsigmoid, "identity": torch.nn.Identity}


def test_every_activation_kind_has_a_namesake() -> None:
    assert sorted(NAMESAKES) == sorted(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_activation_computes_its_namesake(kind: str) -> None:
    x = random_inputs(op_call(kind, (3, 4, 4)))
    expected = NAMESAKES[kind]()(x[0])
    torch.testing.assert_close(apply(emit(op_call(kind, (3, 4, 4))), x), expected, rtol=0, atol=0)
    torch.testing.assert_close(apply(emit(op_call("act", (3, 4, 4), kind)), x), expected, rtol=0, atol=0)


def test_leaky_relu_and_scale_use_their_argument() -> None:
    x = random_inputs(op_call("scale", (3, 4, 4)))
    torch.testing.assert_close(apply(emit(op_call("scale", (3, 4, 4), 0.17)), x), x[0] * 0.17)
    torch.testing.assert_close(apply(emit(op_call("leaky_relu", (3, 4, 4), 0.3)), x), torch.nn.LeakyReLU(0.3)(x[0]))


def test_avgpool_count_include_pad_reaches_torch() -> None:
    ones = [torch.ones(1, 1, 4, 4)]
    counted = apply(emit(op_call("avgpool", (1, 4, 4), 3, s=1, p=1)), ones)
    excluded = apply(emit(op_call("avgpool", (1, 4, 4), 3, s=1, p=1, count_include_pad=False)), ones)
    assert counted[0, 0, 0, 0].item() == pytest.approx(4 / 9)
    assert torch.all(excluded == 1)


def test_emitted_modules_carry_their_attributes() -> None:
    bn = emit(op_call("bn", (8, 4, 4), eps=1e-3, momentum=None, affine=False))
    assert (type(bn), bn.eps, bn.momentum, bn.affine) == (torch.nn.BatchNorm2d, 1e-3, None, False)
    assert type(emit(op_call("bn", (8,)))) is torch.nn.BatchNorm1d
    lrn = emit(op_call("lrn", (8, 4, 4), 5, alpha=2e-4, beta=0.5, k=2.0))
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 2e-4, 0.5, 2.0)
    assert emit(op_call("dropout", (8,), p=0.3)).p == 0.3
    conv = emit(op_call("conv", (4, 9, 9), 6, [1, 7], s=[1, 2], p=[0, 3], d=[2, 1], groups=2, bias=False))
    assert (conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups, conv.bias) == \
        ((1, 7), (1, 2), (0, 3), (2, 1), 2, None)


# -- layouts: permute, and the ops over the last axis ---------------------------------------------


def test_permute_marks_the_layout_and_back() -> None:
    last = REGISTRY["permute"].infer(op_call("permute", (96, 56, 56), [0, 2, 3, 1]).attrs(), [(96, 56, 56)])
    assert isinstance(last, ChannelsLast) and tuple(last) == (56, 56, 96)
    assert last != (56, 56, 96), "a channels-last shape never equals a channels-first one"
    first = REGISTRY["permute"].infer(op_call("permute", last, [0, 3, 1, 2]).attrs(), [last])
    assert type(first) is tuple and first == (96, 56, 56)


@pytest.mark.parametrize("name", ["conv", "maxpool", "avgpool", "bn", "global_avgpool", "mean", "concat",
                                  "channel_shuffle", "chunk"])
def test_channels_first_ops_refuse_channels_last(name: str) -> None:
    args = {"conv": (8, 1), "maxpool": (2,), "avgpool": (2,), "channel_shuffle": (2,), "chunk": (2,)}.get(name, ())
    shape = ChannelsLast((4, 4, 8))
    with pytest.raises(ShapeError) as info:
        case = op_call(name, [shape] if REGISTRY[name].arity is None else shape, *args)
        case.op.infer(case.attrs(), list(case.ins))
    assert "H×W×C" in (info.value.found or "")


def test_linear_and_layernorm_over_the_last_axis_of_channels_last() -> None:
    shape = ChannelsLast((7, 7, 96))
    lin = op_call("linear", shape, 384)
    out = lin.op.infer(lin.attrs(), [shape])
    assert isinstance(out, ChannelsLast) and tuple(out) == (7, 7, 384)
    x = random_inputs(lin)[0]
    module = emit(lin)
    assert module.weight.shape == (384, 96)
    torch.testing.assert_close(apply(module, [x]), x @ module.weight.T + module.bias)
    norm = op_call("layernorm", shape)
    assert norm.op.infer(norm.attrs(), [shape]) == shape
    assert type(emit(norm)) is torch.nn.LayerNorm


def test_mul_with_an_se_gate_computes_torchs_product() -> None:
    case = op_call("mul", [(6, 1, 1), (6, 5, 5)])
    gate, x = random_inputs(case)
    torch.testing.assert_close(apply(emit(case), [gate, x]), gate * x, rtol=0, atol=0)
    three = op_call("mul", [(6, 1, 1), (6, 5, 5), (1, 5, 5)])
    a, b, c = random_inputs(three)
    torch.testing.assert_close(apply(emit(three), [a, b, c]), a * b * c, rtol=0, atol=0)


@pytest.mark.parametrize(("c", "n"), [(c, n) for c in range(1, 12) for n in range(1, 6)])
def test_chunk_is_torchs_chunk(c: int, n: int) -> None:
    x = torch.randn(2, c, 3, 3)
    parts = x.chunk(n, dim=1)
    for i in range(n + 1):
        case = op_call("chunk", (c, 3, 3), n, i)
        if i < len(parts):
            assert rule_outcome(case) == tuple(parts[i].shape[1:])
            torch.testing.assert_close(apply(emit(case), [x]), parts[i], rtol=0, atol=0)
        else:
            assert rule_outcome(case) == ERROR


def test_slice_is_python_slicing() -> None:
    x = torch.randn(2, 10, 3, 3)
    torch.testing.assert_close(apply(emit(op_call("slice", (10, 3, 3), 2, 7)), [x]), x[:, 2:7])
    torch.testing.assert_close(apply(emit(op_call("slice", (10, 3, 3), 4)), [x]), x[:, 4:])


def test_channel_shuffle_is_torchvisions() -> None:
    from torchvision.models.shufflenetv2 import channel_shuffle

    x = torch.randn(2, 12, 3, 3)
    for groups in (1, 2, 3, 4):
        got = apply(emit(op_call("channel_shuffle", (12, 3, 3), groups)), [x])
        torch.testing.assert_close(got, channel_shuffle(x, groups), rtol=0, atol=0)


def test_layernorm_over_channels_is_torchvisions_layernorm2d() -> None:
    from torchvision.models.convnext import LayerNorm2d

    case = op_call("layernorm", (8, 5, 5), eps=1e-6)
    ours, theirs = emit(case), LayerNorm2d(8, eps=1e-6)
    torch.nn.init.normal_(theirs.weight)
    torch.nn.init.normal_(theirs.bias)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = random_inputs(case)[0]
    torch.testing.assert_close(apply(ours, [x]), theirs(x), rtol=0, atol=1e-6)


def test_drop_path_is_torchvisions_stochastic_depth() -> None:
    from torchvision.ops import StochasticDepth

    case = op_call("drop_path", (4, 3, 3), 0.3)
    ours, theirs = emit(case), StochasticDepth(0.3, "row")
    x = torch.randn(64, 4, 3, 3)
    torch.testing.assert_close(ours.eval()(x), x, rtol=0, atol=0)
    torch.manual_seed(0)
    got = ours.train()(x)
    torch.manual_seed(0)
    torch.testing.assert_close(got, theirs.train()(x))  # the same draws, the same rows kept
    kept = (got != 0).flatten(1).all(1)
    assert 0 < int(kept.sum()) < 64
    torch.testing.assert_close(got[kept], x[kept] / 0.7)


def test_mean_equals_global_avgpool_then_flatten() -> None:
    x = torch.randn(2, 1280, 7, 7)
    pooled = torch.flatten(apply(emit(op_call("global_avgpool", (1280, 7, 7))), [x]), 1)
    torch.testing.assert_close(apply(emit(op_call("mean", (1280, 7, 7))), [x]), pooled, rtol=0, atol=1e-6)


def test_layer_scale_is_a_per_channel_parameter() -> None:
    case = op_call("layer_scale", (6, 4, 4), 0.5)
    emitted = emit(case)
    assert emitted.param.shape == (6, 1, 1) and torch.all(emitted.param == 0.5)
    x = random_inputs(case)[0]
    torch.testing.assert_close(apply(emitted, [x]), x * 0.5)
    assert emit(op_call("layer_scale", ChannelsLast((4, 4, 6)))).param.shape == (6,)
