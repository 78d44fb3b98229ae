"""The compiler as an ordered list of stage calls.

    load -> validate -> expand -> graph -> infer  (torch-free: `compile`)
                                            \\-> memory check -> torch backend -> weights  (`build`)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .expand import expand
from .graph import build_graph
from .infer import TypedGraph, infer
from .load import load_file, load_text
from .memory import Limit, check_memory
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
    elif vars:
        spec = spec.with_overrides(**vars)
    network = expand(spec)
    graph = build_graph(network)
    return infer(graph)


def build(spec: SpecLike | TypedGraph, *, device: Any = None, weights: str | Path | None = None,
          max_memory: Limit = "auto", **vars: Any) -> ArchModule:
    """Compile a spec into a `torch.fx.GraphModule` (see `ArchModule`) on `device`.

    `weights`: a `.safetensors` file or a `state_dict` saved by `torch.save`, loaded
    strictly (SpecError `weights-mismatch`, located, when it does not fit).
    `max_memory`: the build is refused (SpecError `too-much-memory`) when its
    parameters and buffers need more than this: "auto" is what `device` has free,
    or bytes, or a size such as "2GiB"; None skips the check.
    """
    from .backends.torch_fx import build_module

    if isinstance(spec, TypedGraph) and vars:
        raise TypeError("a compiled graph has its variables fixed; pass the spec or its path to override them")
    typed = spec if isinstance(spec, TypedGraph) else compile(spec, **vars)
    check_memory(typed, device, max_memory)
    module = build_module(typed, device=device)
    if weights is not None:
        from .weights import load_weights

        load_weights(module, typed, weights)
    return module
