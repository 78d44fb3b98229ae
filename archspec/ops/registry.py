"""The one registry of primitive ops.

Each op is defined once, as an `Op`, with everything every stage needs: its
attribute model (pydantic; the field order is the positional-argument order),
its shape rule, its param and MAC counts, its torch emitter and its draw label.
Shape rules and counts are pure functions of (attrs, input shapes); emitters
import torch lazily, so nothing before the torch backend ever imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    arity: int | None = 1
    kind: str = "other"
    label: Callable[[Any], str] | None = None
    doc: str = ""

    @property
    def positional(self) -> list[str]:
        return list(self.attrs.model_fields)

    def describe(self, attrs: Any) -> str:
        return self.label(attrs) if self.label else self.name


REGISTRY: dict[str, Op] = {}


def register(op: Op) -> Op:
    if op.name in REGISTRY:
        raise ValueError(f"op '{op.name}' is registered twice")
    REGISTRY[op.name] = op
    return op


def get_op(name: str) -> Op | None:
    return REGISTRY.get(name)


class NoAttrs(Attrs):
    """For ops that take no arguments."""
