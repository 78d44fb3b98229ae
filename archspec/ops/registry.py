"""The one registry of primitive ops.

Each op is defined once, as an `Op`, with everything every stage needs: its
attribute model (pydantic; the field order is the positional-argument order),
its shape rule, its param and MAC counts, its torch emitter and its draw label.
Shape rules and counts are pure functions of (attrs, input shapes); emitters
import torch lazily, so nothing before the torch backend ever imports it.
The `doc` and the shape rule's docstring are the op's entry in docs/ops.md
(`python -m archspec.opsdoc > docs/ops.md`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

Shape = tuple[int, ...]
"""A tensor shape without the batch dimension: (C, H, W) or (F,)."""


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


def _zero(attrs: Any, ins: list[Shape], out: Shape) -> int:
    return 0


@dataclass(frozen=True)
class Op:
    """A primitive op. `arity` is the number of inputs; None means one or more."""

    name: str
    attrs: type[Attrs]
    infer: Callable[[Any, list[Shape]], Shape]
    emit: Callable[[Any, list[Shape]], Any]
    params: Callable[[Any, list[Shape], Shape], int] = _zero
    macs: Callable[[Any, list[Shape], Shape], int] = _zero
    weights: Callable[[Any, list[Shape], Shape], int] | None = None
    """Parameters without biases (the papers' convention); None means the same as `params`."""
    buffer_bytes: Callable[[Any, list[Shape]], int] = lambda attrs, ins: 0
    """Bytes of the buffers (state that is not a parameter) the op's torch module holds."""
    arity: int | None = 1
    kind: str = "other"
    label: Callable[[Any], str] | None = None
    doc: str = ""

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


def get_op(name: str) -> Op | None:
    return REGISTRY.get(name)


class NoAttrs(Attrs):
    """For ops that take no arguments."""
