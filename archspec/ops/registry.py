"""The one registry of primitive ops.

Each op is defined once, as an `Op`, with everything every stage needs: its
attribute model (pydantic; the field order is the positional-argument order),
its shape rule, its param and MAC counts, its torch emitter, its Python-source
form, the torch modules that compute it and its draw label. Every stage (torch
and Python-source backends, ONNX export, draw, profile, summary, docs) reads
these facts from here; a new op is one file in archspec/ops/ that calls
`register`. Shape rules and counts are pure functions of (attrs, input
shapes); emitters import torch lazily, so nothing before the torch backend
ever imports it. The `doc` and the shape rule's docstring are the op's entry
in docs/ops.md (`python -m archspec.opsdoc > docs/ops.md`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Protocol

from pydantic import BaseModel, ConfigDict

Shape = tuple[int, ...]
"""A tensor shape without the batch dimension: (C, H, W), (F,), `ChannelsLast` (H, W, C) or `Tokens` (L, D)."""


class ChannelsLast(tuple):  # type: ignore[type-arg]
    """The shape (H, W, C) of an image tensor whose channels are its last axis (after `permute`).

    A plain tuple (C, H, W) is channels-first: what convs and pools take. This subclass is
    the layout marker: ops over the last axis (`layernorm`, `linear`) accept it, spatial ops
    refuse it. It never equals a plain tuple, so shapes of the two layouts are never confused.
    """

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChannelsLast) and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(("channels_last", *self))

    def __repr__(self) -> str:
        return f"ChannelsLast{tuple.__repr__(self)}"


class Tokens(tuple):  # type: ignore[type-arg]
    """The shape (L, D) of a sequence of L tokens of width D (a Vision Transformer's encoder).

    D, the last axis, is the channel axis: ops over it (`linear`, `layernorm`, activations,
    `add`) take tokens, spatial ops refuse them. Like `ChannelsLast`, it never equals a plain
    tuple, so a token sequence is never mistaken for a C×H×W or flat shape of the same numbers.
    """

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokens) and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(("tokens", *self))

    def __repr__(self) -> str:
        return f"Tokens{tuple.__repr__(self)}"


def channels_last(shape: Shape) -> bool:
    return isinstance(shape, ChannelsLast)


def tokens(shape: Shape) -> bool:
    return isinstance(shape, Tokens)


def layout(shape: Shape) -> str:
    """The layout of a shape, as messages name it: `C×H×W`, `H×W×C`, `L×D` or `F`."""
    if tokens(shape):
        return "L×D"
    if channels_last(shape):
        return "H×W×C"
    return "C×H×W" if len(shape) == 3 else "F" if len(shape) == 1 else f"rank {len(shape)}"


def relayout(like: Shape, dims: tuple[int, ...] | list[int]) -> Shape:
    """`dims` in the layout of `like`: an op over the last axis keeps its input's marker."""
    return type(like)(dims) if isinstance(like, (ChannelsLast, Tokens)) else tuple(dims)


def channel_count(shape: Shape) -> int | None:
    """The size of the channel axis: C of C×H×W and of H×W×C, D of L×D, F of a flat F; None for a scalar."""
    if not shape:
        return None
    return shape[-1] if channels_last(shape) or tokens(shape) else shape[0]


class Attrs(BaseModel):
    """Base of every op's attribute model: frozen, unknown names refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ShapeError(Exception):
    """A shape rule's refusal, with what it expected and what it found."""

    def __init__(self, message: str, expected: str | None = None, found: str | None = None,
                 hint: str | None = None, code: str = "shape-mismatch"):
        super().__init__(message)
        self.message, self.expected, self.found, self.hint, self.code = message, expected, found, hint, code


@dataclass(frozen=True)
class FunctionCall:
    """What an emitter returns for a stateless op: `fn(*inputs, *args, **kwargs)`.

    With `pack=True` the inputs are passed as one list (as `torch.cat` wants).
    """

    fn: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    pack: bool = False
    args: tuple[Any, ...] = ()


IDENTITY = FunctionCall(fn=lambda x: x)
"""Emitted by ops that compute nothing; the backend forwards their input."""


@dataclass(frozen=True)
class ParamCall:
    """What an emitter returns for an op that owns a learned tensor but no module: `fn(*inputs, param)`.

    The backend registers `param` (an `nn.Parameter`) on the module of the enclosing scope under
    the node's own name, so that a node `block/layer_scale` has the state_dict key
    `block.layer_scale`, as torchvision's ConvNeXt has it, not `block.layer_scale.weight`.
    """

    param: Any
    fn: Callable[..., Any]


class SourceArgs(Protocol):
    """What an op's Python-source form is given: one node, as the spec wrote it.

    Texts are Python expressions over the enclosing class's parameters (`c3r`, `self.scale`,
    `2 * w`), or constants where the spec wrote constants.
    """

    ins: list[Shape]
    """The concrete input shapes of the node (every use a class is written for has the same ranks)."""

    def arg(self, name: str) -> str | None:
        """The text of the argument `name` (its field name) as the spec wrote it, or None if left out."""
        ...

    def value(self, name: str) -> Any:
        """The argument's value at this node (the default if left out)."""
        ...

    def fixed(self, name: str) -> bool:
        """Whether the argument reads no class parameter (its text is a constant)."""
        ...

    def in_ch(self, i: int = 0) -> str:
        """The text of input `i`'s channel count (see `channel_count`)."""
        ...

    def expr(self, name: str) -> Any:
        """The argument as an expression (`archspec.expr.Expr`) over the class parameters."""
        ...

    def channels(self, i: int = 0) -> Any:
        """Input `i`'s channel count as an expression over the class parameters."""
        ...


@dataclass(frozen=True)
class SourceForm:
    """An op as standalone PyTorch source (the `-o .py` backend).

    Give `module` (a constructor, for ops that hold parameters or must be modules), `call`
    (an expression, for stateless ops), or both: a stateless op with a module form can sit in
    an `nn.Sequential` and is written as a call elsewhere. `param` is for ops returning a
    `ParamCall`: the text of the tensor assigned to the node's name on the enclosing module,
    whose attribute path `call` receives after the inputs.
    """

    module: str | None = None
    """`nn.Conv2d(in_ch, 64, 3)`: the text constructing a module."""
    call: Callable[[list[str]], str] | None = None
    """From the inputs' variable names, the expression computing the op: `torch.cat([a, b], 1)`."""
    param: str | None = None
    """`nn.Parameter(torch.full((96, 1, 1), 1e-06))`: a learned tensor owned by the enclosing module."""
    helpers: tuple[str, ...] = ()
    """Source of the top-level definitions (a `def` or `class`) the texts use, written once into the file."""
    identity: bool = False
    """The op computes nothing here (the input passes through)."""
    out_ch: Any = None
    """The output's channel count as an expression over the class parameters (`archspec.expr.Expr`,
    see `archspec.ops.source.plus`); None: that of the first input with the output's channel count."""


SOURCE_IDENTITY = SourceForm(identity=True, module="nn.Identity()")
"""The source form of an op that passes its input through."""


def _zero(attrs: Any, ins: list[Shape], out: Shape) -> int:
    return 0


@dataclass(frozen=True)
class Op:
    """A primitive op: every fact about it that any stage needs. Plugins fill one and `register` it."""

    name: str
    """The name a spec calls it by: `conv`."""
    attrs: type[Attrs]
    """Its arguments (a frozen pydantic model); field order is the positional order."""
    infer: Callable[[Any, list[Shape]], Shape]
    """The shape rule `(attrs, input shapes) -> output shape`, torch-free; raises `ShapeError`.
    Its docstring is the rule in docs/ops.md."""
    emit: Callable[[Any, list[Shape]], Any]
    """The torch emitter `(attrs, input shapes) ->` an `nn.Module`, a `FunctionCall`, `IDENTITY` or a
    `ParamCall`; imports torch inside."""
    params: Callable[[Any, list[Shape], Shape], int] = _zero
    """Learned parameters of the emitted op."""
    macs: Callable[[Any, list[Shape], Shape], int] = _zero
    """Multiply-accumulates for one image (conv and matmul work; 0 for element-wise ops)."""
    weights: Callable[[Any, list[Shape], Shape], int] | None = None
    """Parameters without biases (the papers' convention); None means the same as `params`."""
    buffer_bytes: Callable[[Any, list[Shape]], int] = lambda attrs, ins: 0
    """Bytes of the buffers (state that is not a parameter) the op's torch module holds."""
    arity: int | None = 1
    """The number of inputs; None means one or more, given by name: `concat(a, b)`."""
    kind: str = "other"
    """Its family (`conv`, `pool`, `act`, ...): the section of docs/ops.md, the draw style, summary rows."""
    label: Callable[[Any], str] | None = None
    """The short text drawn in its box and shown by `summary`: `conv 3×3/2, 64`; None shows the name."""
    doc: str = ""
    """What it computes, in whole sentences (docs/ops.md)."""
    source: Callable[[SourceArgs], SourceForm] | None = None
    """Its Python-source form (`-o .py`); None means `-o .py` refuses a spec that uses it."""
    torch_modules: tuple[str, ...] = ()
    """Fragments of the class names of torch modules that compute it, its own and those a pass makes
    (`Conv` for Conv2d and PackedConv2d): how `profile` names a module that carries no spec op."""
    same_as: tuple[str, dict[str, Any]] | None = None
    """Another op's call this op is a name for, which builds the same module (`global_avgpool` is
    `("adaptive_avgpool", {"out": 1})`): `archspec import` writes this op for that call, and comparing two
    graphs (`archspec.graph_equal`) counts the two as one op."""
    commutative: bool = False
    """Two inputs give the same result in either order, bit for bit (`add`, `mul`: IEEE sums and products of two
    numbers are): comparing two graphs lets `add(input, x)` be `add(x, input)`."""
    canonical: Callable[[Any, list[Shape]], Any] | None = None
    """`(attrs, input shapes) ->` the attributes in one form where several compute the same on those inputs
    (`partition_attention` over a map its one window covers: `block` and `grid` are one grouping): comparing
    two graphs counts them as one call."""
    checks_only: tuple[str, ...] = ()
    """Attributes that add a shape rule and change nothing the module computes (conv's `exact`): comparing two
    graphs leaves them out."""
    grouping: Callable[[Any], tuple[Callable[[Any], Any], Callable[[Any], Any]]] | None = None
    """For an op that forms groups of positions inside itself (`partition_attention`): given its attributes, the
    functions from its N×H×W×C input to the N×G×T×C groups (G groups of T positions) and back (given H and W).
    `archspec import` reads a torch module named in `torch_modules` that runs on groups formed outside it
    (torchvision's MaxViT attention) as the op on the map, where these functions are the partition and departition
    around it."""

    @cached_property
    def positional(self) -> list[str]:
        """Attribute names in positional-argument order, computed once (expansion asks for them at every call)."""
        return list(self.attrs.model_fields)

    def describe(self, attrs: Any) -> str:
        return self.label(attrs) if self.label else self.name

    def count_weights(self, attrs: Any, ins: list[Shape], out: Shape) -> int:
        return (self.weights or self.params)(attrs, ins, out)

    def signature(self) -> str:
        """The op as a spec calls it, with defaults: `conv(out, k, s=1, p=0, d=1, groups=1, bias=true)`."""
        fields = self.attrs.model_fields
        if not fields:
            return self.name
        parts = [n if f.is_required() else f"{n}={spec_value(f.default)}" for n, f in fields.items()]
        return f"{self.name}({', '.join(parts)})"

    def arg_names(self) -> list[str]:
        """Every name an argument may be written with, aliases included."""
        return [a for n, f in self.attrs.model_fields.items() for a in [n, *field_aliases(n, f)]]


def spec_value(v: Any) -> str:
    """A value as a spec writes it: `true`, `null`, `1` for the pair (1, 1), `[1, 2]`."""
    if isinstance(v, bool) or v is None:
        return {True: "true", False: "false", None: "null"}[v]
    if isinstance(v, (tuple, list)):
        if len(v) == 2 and v[0] == v[1]:
            return spec_value(v[0])
        return f"[{', '.join(spec_value(x) for x in v)}]"
    return str(v)


def field_aliases(name: str, field: Any) -> list[str]:
    """The other names an argument may be written with (its `validation_alias` choices)."""
    choices = getattr(field.validation_alias, "choices", None) or []
    return [c for c in choices if isinstance(c, str) and c != name]


REGISTRY: dict[str, Op] = {}


class DuplicateOpError(ValueError):
    """`register` of a name already taken (by a built-in op or a plugin's)."""

    def __init__(self, name: str):
        super().__init__(f"op '{name}' is registered twice")
        self.name = name


def register(op: Op) -> Op:
    """Add `op` to the registry, as built-in ops and plugins do; a name already taken is refused."""
    if op.name in REGISTRY:
        raise DuplicateOpError(op.name)
    REGISTRY[op.name] = op
    return op


def named_call(op: str, attrs: Any) -> str | None:
    """The op that is a name for `op` called with `attrs` (`Op.same_as`: `global_avgpool` for
    `adaptive_avgpool(1)`), or None."""
    for other in REGISTRY.values():
        if other.same_as is not None and other.same_as[0] == op and op in REGISTRY:
            if REGISTRY[op].attrs.model_validate(other.same_as[1]) == attrs:
                return other.name
    return None


def get_op(name: str) -> Op | None:
    return REGISTRY.get(name)


class NoAttrs(Attrs):
    """For ops that take no arguments."""
