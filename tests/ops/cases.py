"""Cases for every registered op, and the means to run them through the op's rule and through torch.

A `Case` is an op call as a spec writes it (argument names may be any of the
op's aliases, optional arguments may be left out) plus its input shapes. For
each op, `CASES[name]` is a hypothesis strategy of such calls, valid and
invalid alike; `rule_outcome` and `torch_outcome` give the output shape (batch
left out) or `ERROR`, from the shape rule and from the emitted torch code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from torch import nn

from archspec.ops import REGISTRY, Attrs, ChannelsLast, FunctionCall, Op, ParamCall, Shape, ShapeError, Tokens
from archspec.ops.activation import KINDS

ERROR = "error"
Outcome = Shape | str
TORCH_ERRORS = (RuntimeError, ValueError, IndexError)
"""What torch raises for a bad size or attribute (at construction or at run time)."""


@dataclass(frozen=True)
class Case:
    """An op called with `args` (as written in a spec) on inputs of shapes `ins` (batch left out)."""

    name: str
    args: dict[str, Any]
    ins: tuple[Shape, ...]

    @property
    def op(self) -> Op:
        return REGISTRY[self.name]

    def attrs(self) -> Attrs:
        return self.op.attrs.model_validate(self.args)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"{self.name}({args}) on {' + '.join('x'.join(map(str, s)) for s in self.ins)}"


def op_call(name: str, ins: Shape | list[Shape], *args: Any, **kwargs: Any) -> Case:
    """A Case written as in a spec: `op_call("conv", (3, 8, 8), 16, 3, p=1)`; several inputs as a list."""
    fields = REGISTRY[name].positional
    assert len(args) <= len(fields), f"{name} takes {len(fields)} positional arguments"
    positional = dict(zip(fields, args, strict=False))
    return Case(name, {**positional, **kwargs}, tuple(ins) if isinstance(ins, list) else (ins,))


# -- running a case --------------------------------------------------------------------------


def rule_outcome(case: Case) -> Outcome:
    """The shape rule's output shape as a plain tuple (torch's shapes carry no layout), or ERROR if it
    refuses (checking that it says why)."""
    try:
        return tuple(case.op.infer(case.attrs(), list(case.ins)))
    except ShapeError as exc:
        assert exc.message and exc.expected and exc.found, f"{case}: a ShapeError without expected/found"
        return ERROR


def emit(case: Case, device: str = "cpu") -> nn.Module | FunctionCall | ParamCall:
    """What the op's emitter produces for the case, created on `device`."""
    with torch.device(device):
        return case.op.emit(case.attrs(), list(case.ins))


def apply(emitted: nn.Module | FunctionCall | ParamCall, inputs: list[torch.Tensor]) -> torch.Tensor:
    """Run an emitted module or function call as the torch backend does (modules in eval mode)."""
    if isinstance(emitted, ParamCall):
        return emitted.fn(*inputs, emitted.param)
    if isinstance(emitted, FunctionCall):
        args = ((inputs,) if emitted.pack else tuple(inputs)) + emitted.args
        return emitted.fn(*args, **emitted.kwargs)
    return emitted.eval()(*inputs)


def random_inputs(case: Case, device: str = "cpu", batch: int = 1) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn((batch, *s), generator=gen).to(device) for s in case.ins]


def torch_outcome(case: Case) -> Outcome:
    """The shape torch produces on a real CPU tensor (batch 1), or ERROR if torch raises."""
    try:
        out = apply(emit(case), random_inputs(case))
    except TORCH_ERRORS:
        return ERROR
    return tuple(out.shape[1:])


# -- building cases ----------------------------------------------------------------------------

OMIT = object()
"""A drawn value meaning 'leave this optional argument out' (test the default)."""


def spellings(name: str, field: str) -> list[str]:
    """Every name the argument `field` of op `name` may be written with."""
    alias = REGISTRY[name].attrs.model_fields[field].validation_alias
    return list(getattr(alias, "choices", None) or [field])


@st.composite
def drawn_call(draw: st.DrawFn, name: str, values: dict[str, Any], ins: tuple[Shape, ...]) -> Case:
    """A Case whose argument names are drawn among the aliases; OMIT values are left out."""
    args = {draw(st.sampled_from(spellings(name, f))): v for f, v in values.items() if v is not OMIT}
    return Case(name, args, ins)


def opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value for an optional argument, or OMIT."""
    return st.one_of(st.just(OMIT), strategy)


def int_or_pair(lo: int, hi: int) -> st.SearchStrategy[Any]:
    """One number, or a pair written as a YAML list: `3` or `[1, 7]`."""
    return st.one_of(st.integers(lo, hi), st.lists(st.integers(lo, hi), min_size=2, max_size=2))


def chw(c: int = 8, hw: int = 20) -> st.SearchStrategy[Shape]:
    return st.tuples(st.integers(1, c), st.integers(1, hw), st.integers(1, hw))


def flat(f: int = 16) -> st.SearchStrategy[Shape]:
    return st.tuples(st.integers(1, f))


def spatial(c: int = 8, hw: int = 20) -> st.SearchStrategy[Shape]:
    """Input of a spatial op: C×H×W, and one time in ten a flat F (which it must refuse)."""
    return st.integers(0, 9).flatmap(lambda i: flat(c) if i == 0 else chw(c, hw))


def hwc(c: int = 8, hw: int = 8) -> st.SearchStrategy[Shape]:
    """A channels-last H×W×C (after `permute([0, 2, 3, 1])`)."""
    return st.tuples(st.integers(1, hw), st.integers(1, hw), st.integers(1, c)).map(ChannelsLast)


def tokens(length: int = 8, d: int = 12) -> st.SearchStrategy[Shape]:
    """A token sequence L×D (after `to_tokens`)."""
    return st.tuples(st.integers(1, length), st.integers(1, d)).map(Tokens)


def any_layout() -> st.SearchStrategy[Shape]:
    """C×H×W, H×W×C, L×D or F: the inputs of ops over the channel (last) axis."""
    return st.one_of(chw(6, 8), hwc(6, 8), tokens(), flat())


def any_rank() -> st.SearchStrategy[Shape]:
    """A shape the pipeline produces: C×H×W, or F after flatten."""
    return st.one_of(chw(6, 8), flat())


@st.composite
def conv_case(draw: st.DrawFn) -> Case:
    """Groups usually divide both channel counts; now and then they do not."""
    groups = draw(opt(st.sampled_from([1, 2, 3])))
    g = 1 if groups is OMIT else groups
    c_in, c_out = (draw(st.integers(1, 3)) * g for _ in range(2))
    if draw(st.integers(0, 9)) == 0:
        c_in, c_out = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    values = {
        "out": c_out,
        "k": draw(int_or_pair(1, 7)),
        "s": draw(opt(int_or_pair(1, 3))),
        "p": draw(opt(st.one_of(int_or_pair(0, 3), st.sampled_from(["same", "valid"])))),
        "d": draw(opt(int_or_pair(1, 3))),
        "groups": groups,
        "bias": draw(opt(st.booleans())),
    }
    shape = (c_in, draw(st.integers(1, 20)), draw(st.integers(1, 20)))
    return draw(drawn_call("conv", values, (shape[:1] if draw(st.integers(0, 19)) == 0 else shape,)))


@st.composite
def pool_case(draw: st.DrawFn, name: str) -> Case:
    values: dict[str, Any] = {
        "k": draw(int_or_pair(1, 5)),
        "s": draw(opt(int_or_pair(1, 4))),
        "p": draw(opt(int_or_pair(0, 3))),
        "ceil": draw(opt(st.booleans())),
    }
    if name == "maxpool":
        values["d"] = draw(opt(int_or_pair(1, 3)))
    else:
        values["count_include_pad"] = draw(opt(st.booleans()))
    return draw(drawn_call(name, values, (draw(spatial(3, 20)),)))


@st.composite
def adaptive_case(draw: st.DrawFn, name: str) -> Case:
    size = st.integers(1, 6)
    out = draw(st.one_of(size, st.lists(st.one_of(st.none(), size), min_size=2, max_size=2)))
    return draw(drawn_call(name, {"out": out}, (draw(spatial(4, 12)),)))


@st.composite
def concat_case(draw: st.DrawFn) -> Case:
    """Inputs that usually agree on H×W (or are all flat), sometimes not, rarely of mixed rank."""
    n = draw(st.integers(1, 4))
    base = draw(any_rank())
    ins = []
    for _ in range(n):
        rest = base[1:]
        if draw(st.integers(0, 5)) == 0:
            rest = draw(st.one_of(st.tuples(st.integers(1, 8), st.integers(1, 8)), st.just(())))
        ins.append((draw(st.integers(1, 8)), *rest))
    return Case("concat", {}, tuple(ins))


@st.composite
def add_case(draw: st.DrawFn) -> Case:
    """Inputs of one shape, or with one size changed so that torch cannot broadcast them either."""
    base = draw(st.one_of(st.tuples(*[st.integers(2, 6)] * 3), st.tuples(st.integers(2, 16))))
    ins = [base] * draw(st.integers(1, 3))
    if draw(st.booleans()):
        i, dim = draw(st.integers(0, len(ins) - 1)), draw(st.integers(0, len(base) - 1))
        ins[i] = tuple(d + 1 if j == dim else d for j, d in enumerate(base))
    return Case("add", {}, tuple(ins))


@st.composite
def broadcast_case(draw: st.DrawFn, name: str) -> Case:
    """Inputs of one rank, each size equal to the first's or 1 (an SE gate C×1×1 times C×H×W), now and then
    with a size that neither equals nor is 1, so that torch cannot broadcast them either."""
    base = draw(st.one_of(st.tuples(*[st.integers(2, 6)] * 3), st.tuples(st.integers(2, 16)),
                          st.tuples(*[st.integers(2, 6)] * 3).map(ChannelsLast)))
    ins = []
    for _ in range(draw(st.integers(1, 3))):
        dims = [1 if draw(st.integers(0, 3)) == 0 else d for d in base]
        if draw(st.integers(0, 5)) == 0:
            dims[draw(st.integers(0, len(dims) - 1))] += 1
        ins.append(ChannelsLast(dims) if isinstance(base, ChannelsLast) else tuple(dims))
    return Case(name, {}, tuple(ins))


PERMUTATIONS = {"chw": [[0, 2, 3, 1], [0, 1, 3, 2], [0, 1, 2, 3]], "hwc": [[0, 3, 1, 2], [0, 2, 1, 3], [0, 1, 2, 3]]}


@st.composite
def permute_case(draw: st.DrawFn) -> Case:
    """An order that keeps a layout archspec knows (the others: EDGE_CASES); one time in ten a flat input."""
    layout = draw(st.sampled_from(["chw", "hwc", "flat"]))
    shape = draw({"chw": chw(6, 8), "hwc": hwc(6, 8), "flat": flat()}[layout])
    dims = draw(st.sampled_from(PERMUTATIONS["chw" if layout == "flat" else layout]))
    return draw(drawn_call("permute", {"dims": dims}, (shape,)))


@st.composite
def attention_case(draw: st.DrawFn) -> Case:
    """A width that usually splits into the heads, now and then one that does not (torch refuses it too)."""
    heads = draw(st.integers(1, 4))
    d = heads * draw(st.integers(1, 4)) + (draw(st.integers(1, 3)) if draw(st.integers(0, 5)) == 0 else 0)
    values = {"heads": heads, "dropout": draw(opt(st.floats(0, 1))), "bias": draw(opt(st.booleans()))}
    return draw(drawn_call("self_attention", values, (Tokens((draw(st.integers(1, 9)), d)),)))


@st.composite
def slice_case(draw: st.DrawFn) -> Case:
    """A non-empty range that now and then runs past the channels."""
    shape = draw(st.one_of(chw(8, 5), flat(8)))
    start = draw(st.integers(0, 9))
    stop = draw(opt(st.integers(start + 1, 11)))
    return draw(drawn_call("slice", {"start": start, "stop": stop}, (shape,)))


@st.composite
def window_attention_case(draw: st.DrawFn) -> Case:
    """H×W×C with C usually a multiple of the heads and a shift usually below the window (a C×H×W input, which
    torch would read as H×W×C, is in tests/ops/test_swin_ops.py)."""
    heads = draw(st.integers(1, 3))
    c = heads * draw(st.integers(1, 3)) if draw(st.integers(0, 9)) else draw(st.integers(1, 7))
    window = draw(st.integers(1, 4))
    shift = draw(st.integers(0, window - 1)) if draw(st.integers(0, 9)) else draw(st.integers(0, 5))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    shape = ChannelsLast((h, w, c))
    values = {"heads": heads, "window": window if draw(st.booleans()) else [window, window],
              "shift": draw(opt(st.just(shift))), "v2": draw(opt(st.booleans())),
              "qkv_bias": draw(opt(st.booleans())), "proj_bias": draw(opt(st.booleans()))}
    return draw(drawn_call("window_attention", values, (shape,)))


@st.composite
def partition_attention_case(draw: st.DrawFn) -> Case:
    """H×W×C with C a multiple of `head_dim` and H, W multiples of `size`, now and then not."""
    size, head_dim = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    h, w = (size * draw(st.integers(1, 3)) for _ in range(2))
    c = head_dim * draw(st.integers(1, 3))
    if draw(st.integers(0, 5)) == 0:
        h, w, c = h + draw(st.integers(0, 2)), w + draw(st.integers(0, 2)), c + draw(st.integers(0, 2))
    values = {"size": size, "head_dim": head_dim, "mode": draw(opt(st.sampled_from(["block", "grid"]))),
              "scale": draw(opt(st.floats(0.1, 2)))}
    return draw(drawn_call("partition_attention", values, (ChannelsLast((h, w, c)),)))


def unary(name: str, values: st.SearchStrategy[dict[str, Any]], shape: st.SearchStrategy[Shape]
          ) -> st.SearchStrategy[Case]:
    return st.tuples(values, shape).flatmap(lambda vs: drawn_call(name, vs[0], (vs[1],)))


def fixed(**values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(values)


finite = st.floats(-4, 4, allow_nan=False)

CASES: dict[str, st.SearchStrategy[Case]] = {
    **{kind: unary(kind, st.just({}), any_rank()) for kind in KINDS},
    "act": unary("act", fixed(kind=st.sampled_from(KINDS)), any_rank()),
    "leaky_relu": unary("leaky_relu", fixed(slope=opt(st.floats(0, 1))), any_rank()),
    "scale": unary("scale", fixed(factor=finite), any_rank()),
    "conv": conv_case(),
    "linear": unary("linear", fixed(out=st.integers(1, 16), bias=opt(st.booleans())),
                    st.one_of(flat(32), hwc(12, 4), tokens())),
    "flatten": unary("flatten", st.just({}), any_rank()),
    "dropout": unary("dropout", fixed(p=opt(st.floats(0, 1))), any_rank()),
    "concat": concat_case(),
    "add": add_case(),
    "mul": broadcast_case("mul"),
    "layernorm": unary("layernorm", fixed(eps=opt(st.floats(1e-6, 0.1)), affine=opt(st.booleans())), any_layout()),
    "layer_scale": unary("layer_scale", fixed(init=opt(finite)), any_layout()),
    "drop_path": unary("drop_path", fixed(p=st.floats(0, 1)), any_rank()),
    "permute": permute_case(),
    "window_attention": window_attention_case(),
    "patch_gather": unary("patch_gather", st.just({}), hwc(6, 7)),
    "partition_attention": partition_attention_case(),
    "chunk": unary("chunk", fixed(chunks=st.integers(1, 5), index=opt(st.integers(0, 5))),
                   st.one_of(chw(9, 4), flat(9))),
    "slice": slice_case(),
    "channel_shuffle": unary("channel_shuffle", fixed(groups=st.integers(1, 4)), chw(8, 4)),
    "mean": unary("mean", st.just({}), spatial(4, 6)),
    "bn": unary("bn", fixed(eps=opt(st.floats(1e-6, 0.1)), momentum=opt(st.one_of(st.none(), st.floats(0, 1))),
                            affine=opt(st.booleans())), any_rank()),
    "lrn": unary("lrn", fixed(size=st.integers(1, 7), alpha=opt(st.floats(0, 1)), beta=opt(st.floats(0, 1)),
                              k=opt(st.floats(0.5, 2))), spatial(8, 6)),
    "maxpool": pool_case("maxpool"),
    "avgpool": pool_case("avgpool"),
    "adaptive_avgpool": adaptive_case("adaptive_avgpool"),
    "adaptive_maxpool": adaptive_case("adaptive_maxpool"),
    "global_avgpool": unary("global_avgpool", st.just({}), spatial(4, 9)),
    "to_tokens": unary("to_tokens", st.just({}), spatial(6, 6)),
    "class_token": unary("class_token", st.just({}), tokens()),
    "pos_embedding": unary("pos_embedding", fixed(std=opt(st.floats(0, 1))), tokens()),
    "self_attention": attention_case(),
    "select_token": unary("select_token", fixed(index=opt(st.integers(0, 6))), tokens(6)),
    "mean_tokens": unary("mean_tokens", st.just({}), tokens()),
}

def examples(n: int) -> settings:
    """Settings for `n` examples: no deadline (the machine is shared), no example database on disk."""
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
