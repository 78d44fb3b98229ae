"""The compiler as an ordered list of stage calls.

    load -> validate -> expand -> graph -> infer  (torch-free: `compile`)
                                            \\-> torch backend        (`build`)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .expand import expand
from .graph import build_graph
from .infer import TypedGraph, infer
from .load import load_file, load_text
from .spec import Spec
from .validate import validate

if TYPE_CHECKING:
    from .backends.torch_fx import ArchModule

SpecLike = str | Path | Spec


def load(path: str | Path, **vars: Any) -> Spec:
    """Load and validate a spec file; `vars` override its `vars:` (and `input`)."""
    return validate(load_file(path), vars)


def loads(text: str, file: str = "<spec>", **vars: Any) -> Spec:
    """Load and validate spec text."""
    return validate(load_text(text, file), vars)


def compile(spec: SpecLike, **vars: Any) -> TypedGraph:  # noqa: A001 - the verb of this package
    """Run every torch-free stage: a graph with shapes, params and MACs per node."""
    if not isinstance(spec, Spec):
        spec = load(spec, **vars)
    elif vars:  # validated again: the overrides may change what the vars evaluate to
        spec = validate(spec.source, {**spec.overrides, **vars})
    network = expand(spec)
    graph = build_graph(network)
    return infer(graph)


def build(spec: SpecLike | TypedGraph, *, device: Any = None, **vars: Any) -> ArchModule:
    """Compile a spec into a `torch.fx.GraphModule` (see `ArchModule`) on `device`."""
    from .backends.torch_fx import build_module

    if isinstance(spec, TypedGraph) and vars:
        raise TypeError("a compiled graph has its variables fixed; pass the spec or its path to override them")
    typed = spec if isinstance(spec, TypedGraph) else compile(spec, **vars)
    return build_module(typed, device=device)
