"""The intermediate representation handed from `expand` to `graph`, `infer` and the backends.

A `Network` is a flat, ordered dict of primitive `Node`s plus the tree of
`Scope`s they were expanded from (block instances, sequences, branches,
repeats, heads). Node names are scope paths joined with '/', e.g.
`inception4b/branch2/1/conv`; the torch backend turns '/' into '.', so those
names are the module paths and `state_dict()` keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Union

from .errors import Location

if TYPE_CHECKING:
    from .spec import HeadDef

INPUT = "input"

ScopeKind = Literal["root", "seq", "block", "merge", "repeat", "head"]


@dataclass(frozen=True)
class Ref:
    """A name written by the user, resolved by the graph stage in scope `scope`."""

    name: str
    scope: str
    loc: Location


Source = Union[str, Ref]
"""Where a node's input comes from: a node name, or a reference to resolve."""


@dataclass(slots=True)
class Node:
    name: str
    op: str
    attrs: Any
    inputs: list[Source]
    trace: tuple[Location, ...]
    head: str | None = None
    train_only: bool = False

    @property
    def loc(self) -> Location | None:
        """Where the user wrote the outermost call that produced this node."""
        return self.trace[0] if self.trace else None

    @property
    def origin(self) -> Location | None:
        """The template line the node itself came from."""
        return self.trace[-1] if self.trace else None

    @property
    def module_path(self) -> str:
        return self.name.replace("/", ".")


@dataclass(slots=True)
class Scope:
    path: str
    kind: ScopeKind
    loc: Location | None
    input: Source | list[Source] | None = None
    output: str | None = None
    block: str | None = None
    args: dict[str, Any] | None = None
    repeat: int | None = None
    head: str | None = None
    children: list[str] = field(default_factory=list)

    def label(self) -> str:
        """`inception(64, 96, 128, 16, 32, 32)`, `block35 ×10`, or the scope's name."""
        if self.block and self.args is not None:
            return f"{self.block}({', '.join(fmt_arg(v) for v in self.args.values())})"
        return self.path.rsplit("/", 1)[-1] or "network"


def fmt_arg(v: Any) -> str:
    """A block argument as a spec writes it: `0.17`, `true`, `relu`."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@dataclass
class Network:
    name: str
    file: str
    input_shape: tuple[int, ...]
    nodes: dict[str, Node]
    scopes: dict[str, Scope]
    outputs: dict[str, str]
    heads: dict[str, HeadDef]
    """The heads that were built (`when:` true), in spec order."""
    sources: dict[str, str]
    spec: Any = None
    """The validated `Spec` this network was expanded from."""
    aliases: dict[str, Any] = field(default_factory=dict)
    """Paths of absent layers (`when:` false), each with what it passes through: a reference to it resolves
    to that source (a node name, a `Ref`, or a list of them)."""

    def output_names(self, training: bool) -> list[str]:
        """Output keys in order: 'main' first, then heads active in that mode."""
        return ["main"] + [h for h, info in self.heads.items() if training or not info.train_only]

    def loss_weights(self) -> dict[str, float]:
        return {"main": 1.0, **{h: info.loss_weight for h, info in self.heads.items()}}

    def output_of(self, path: str) -> str | None:
        """The node a name stands for: a scope's output node, or the node itself."""
        if path in self.scopes:
            return self.scopes[path].output
        return path if path in self.nodes else None

    def train_only(self, scope: Scope) -> bool:
        """Whether a scope lies in a training-only head."""
        head = self.heads.get(scope.head) if scope.head else None
        return bool(head and head.train_only)

    def describe(self, scope: Scope) -> str:
        """`inception(64, 96, ...)` for a block instance, `block35(0.17) ×10` for a repeat, else what it is."""
        if scope.block is not None:
            return scope.label()
        if scope.kind == "repeat":
            first = self.scopes.get(scope.children[0]) if scope.children else None
            inner = first.label() if first is not None and first.block else "repeat"
            return f"{inner} ×{scope.repeat}"
        if scope.kind == "merge" and scope.output in self.nodes:
            return self.nodes[scope.output].op
        return {"seq": "sequence"}.get(scope.kind, scope.kind)


def join(scope: str, name: str) -> str:
    return f"{scope}/{name}" if scope else name


def parent(path: str) -> str:
    return path.rpartition("/")[0]
