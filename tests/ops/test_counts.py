"""Every op's parameter and MAC counts against the module torch builds and torch's FLOP counter.

The MAC convention: one MAC (multiply-accumulate) per multiply-add of a conv or
a linear layer, for one image (batch 1); bias additions are not counted. Pooling,
norms, activations, dropout, scales, add, mul, concat and the reshaping ops count 0 MACs.
`torch.utils.flop_counter.FlopCounterMode` counts 2 FLOPs per multiply-add of
conv and matmul and nothing for the rest, so an op's MACs are exactly half the
FLOPs it reports.

Parameters are the emitted module's `parameters()`: weights and biases, BN's
scale and shift; BN's running statistics are buffers, not parameters. A learned
tensor owned by the enclosing module (`layer_scale`'s `ParamCall`) counts too.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable

import pytest
import torch
from hypothesis import assume, given
from torch.utils.flop_counter import FlopCounterMode

import archspec
from archspec.ops import REGISTRY, ParamCall

from .cases import CASES, ERROR, Case, apply, emit, examples, op_call, random_inputs, rule_outcome

COUNT_EXAMPLES = {"conv": 120, "linear": 40, "maxpool": 40, "avgpool": 40}
"""Hypothesis examples per op; the others get 15 (their counts are constant zeros or 2·C)."""


def torch_params(case: Case) -> int:
    emitted = emit(case)
    if isinstance(emitted, ParamCall):
        return emitted.param.numel()
    return sum(p.numel() for p in emitted.parameters()) if isinstance(emitted, torch.nn.Module) else 0


def torch_macs(case: Case) -> int:
    """Half the FLOPs torch counts for one image, run on the meta device (no real arithmetic)."""
    emitted = emit(case, device="meta")
    with FlopCounterMode(display=False) as counter:
        apply(emitted, random_inputs(case, device="meta"))
    flops = counter.get_total_flops()
    assert flops % 2 == 0, f"{case}: an odd FLOP count {flops}"
    return flops // 2


def counts(case: Case) -> tuple[int, int]:
    """The op's (params, MACs) for a case its shape rule accepts."""
    attrs, ins = case.attrs(), list(case.ins)
    out = case.op.infer(attrs, ins)
    return case.op.params(attrs, ins, out), case.op.macs(attrs, ins, out)


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_counts_agree_with_torch(name: str) -> None:
    @examples(COUNT_EXAMPLES.get(name, 15))
    @given(case=CASES[name])
    def check(case: Case) -> None:
        assume(rule_outcome(case) != ERROR)
        assert counts(case) == (torch_params(case), torch_macs(case)), str(case)

    check()


KNOWN_COUNTS = [
    # (case, params, MACs): each written out by hand
    (op_call("conv", (3, 224, 224), 64, 7, s=2, p=3, bias=False), 64 * 3 * 49, 64 * 3 * 49 * 112 * 112),
    (op_call("conv", (192, 28, 28), 64, 1), 192 * 64 + 64, 192 * 64 * 28 * 28),
    (op_call("conv", (8, 17, 17), 8, [1, 7], p=[0, 3]), 8 * 8 * 7 + 8, 8 * 8 * 7 * 17 * 17),
    (op_call("conv", (8, 6, 6), 12, 3, groups=4, p="same", bias=False), 12 * 2 * 9, 12 * 2 * 9 * 36),
    (op_call("linear", (1024,), 1000), 1024 * 1000 + 1000, 1024 * 1000),
    (op_call("linear", (1024,), 10, bias=False), 10240, 10240),
    (op_call("bn", (64, 7, 7)), 128, 0),
    (op_call("bn", (64, 7, 7), affine=False), 0, 0),
    (op_call("bn", (1024,)), 2048, 0),
    (op_call("lrn", (64, 7, 7), 5), 0, 0),
    (op_call("maxpool", (64, 56, 56), 3, s=2, ceil=True), 0, 0),
    (op_call("concat", [(64, 28, 28), (128, 28, 28)]), 0, 0),
    (op_call("add", [(64, 7, 7), (64, 7, 7)]), 0, 0),
]


@pytest.mark.parametrize(("case", "params", "macs"), KNOWN_COUNTS, ids=str)
def test_known_counts(case: Case, params: int, macs: int) -> None:
    assert counts(case) == (params, macs)
    assert (torch_params(case), torch_macs(case)) == (params, macs)


# -- the seeds' arithmetic, through the whole pipeline ------------------------------------------

SpecWriter = Callable[..., Path]


def network(write_spec: SpecWriter, input_shape: list[int], body: str) -> archspec.TypedGraph:
    """Compile a spec of `body` (YAML lines of the `body:` mapping) on an input of `input_shape`."""
    layers = textwrap.indent(textwrap.dedent(body).strip(), "  ")
    return archspec.compile(write_spec(f"archspec: 1\nname: seed\ninput: {input_shape}\nbody:\n{layers}\n"))


def test_5x5_conv_weights(write_spec: SpecWriter) -> None:
    """GoogLeNet explained: 96 5×5 convs on 28×28×192 have 192·5·5·96 weights."""
    typed = network(write_spec, [192, 28, 28], "conv5: conv(96, 5, p=2, bias=false)")
    assert typed.total("params") == typed.info["conv5"].params == 460_800
    assert typed.shape("conv5") == (96, 28, 28)


def test_5x5_conv_weights_with_1x1_reduction(write_spec: SpecWriter) -> None:
    """... and with 32 1×1 convs first, 192·32 + 32·5·5·96 = 82,944, 1/5.5 of it."""
    typed = network(write_spec, [192, 28, 28], """
        reduce: conv(32, 1, bias=false)
        conv5: conv(96, 5, p=2, bias=false)
    """)
    assert (typed.info["reduce"].params, typed.info["conv5"].params) == (6_144, 76_800)
    assert typed.total("params") == 82_944


def test_3x3_conv_multiplications(write_spec: SpecWriter) -> None:
    """Inception explained: 192→256 channels on 32×32 by a 3×3 conv is 192·256·3·3·32·32 multiplications."""
    typed = network(write_spec, [192, 32, 32], "conv3: conv(256, 3, p=1, bias=false)")
    assert typed.total("macs", inference=True) == 452_984_832


def test_3x3_conv_multiplications_with_bottleneck(write_spec: SpecWriter) -> None:
    """... and with a 96-channel 1×1 bottleneck first, 192·96·32·32 + 96·256·3·3·32·32, about half."""
    typed = network(write_spec, [192, 32, 32], """
        bottleneck: conv(96, 1, bias=false)
        conv3: conv(256, 3, p=1, bias=false)
    """)
    assert (typed.info["bottleneck"].macs, typed.info["conv3"].macs) == (18_874_368, 226_492_416)
    assert typed.total("macs", inference=True) == 245_366_784


@pytest.mark.parametrize("name", ["conv", "linear"])
def test_weights_leave_out_exactly_the_biases(name):
    """`Op.count_weights` is the papers' count: the emitted module's parameters minus its bias."""
    import torch

    op = REGISTRY[name]
    ins = [(6, 5, 5)] if name == "conv" else [(24,)]
    args = {"out": 8, "k": 3, "groups": 2} if name == "conv" else {"out": 8}
    attrs = op.attrs.model_validate(args)
    out = op.infer(attrs, ins)
    module = op.emit(attrs, ins)
    assert isinstance(module, torch.nn.Module) and module.bias is not None
    assert op.count_weights(attrs, ins, out) == module.weight.numel()
    assert op.count_weights(attrs, ins, out) == op.params(attrs, ins, out) - module.bias.numel()
