"""The compiler as an ordered list of stage calls.

    load -> validate -> expand -> graph -> infer  (torch-free: `compile`)
                                            \\-> memory check -> torch backend -> weights  (`build`)
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

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


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the stages build their data; nests.

    The stages allocate several small objects per node and make almost no reference
    cycles, so the collector frees nothing here; but each of its full collections walks
    every live object of the process, and their number grows with the spec: with the
    collector on, a spec of 100,000 nodes spent a third of its time in it and the time
    per node grew with the size. Reference counting still frees everything at once.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def load(path: str | Path, **vars: Any) -> Spec:
    """Load and validate a spec file; `vars` override its `vars:` (and `input`)."""
    with paused_gc():
        return validate(load_file(path), vars)


def loads(text: str, file: str = "<spec>", **vars: Any) -> Spec:
    """Load and validate spec text."""
    with paused_gc():
        return validate(load_text(text, file), vars)


def compile(spec: SpecLike, **vars: Any) -> TypedGraph:  # noqa: A001 - the verb of this package
    """Run every torch-free stage: a graph with shapes, params and MACs per node."""
    with paused_gc():
        if not isinstance(spec, Spec):
            spec = load(spec, **vars)
        elif vars:  # validated again: the overrides may change what the vars evaluate to
            spec = validate(spec.source, {**spec.overrides, **vars})
        network = expand(spec)
        graph = build_graph(network)
        return infer(graph)


def build(spec: SpecLike | TypedGraph, *, device: Any = None, weights: str | Path | None = None,
          max_memory: Limit = "auto", optimize: bool | Iterable[str] = False, seed: int | None = None,
          dtype: str = "fp32", calibrate: Iterable[Any] | None = None, **vars: Any) -> ArchModule:
    """Compile a spec into a `torch.fx.GraphModule` (see `ArchModule`) on `device`.

    `weights`: a `.safetensors` file or a `state_dict` saved by `torch.save`, loaded
    strictly (SpecError `weights-mismatch`, located, when it does not fit).
    `max_memory`: the build is refused (SpecError `too-much-memory`) when its
    parameters and buffers need more than this: "auto" is what `device` has free,
    or bytes, or a size such as "2GiB"; None skips the check.
    `optimize`: True (the default passes for `device`) or a list of pass names returns
    `archspec.optimize(module, passes)` instead, an inference-only module (docs/optimize.md).
    `dtype` other than "fp32" (with `calibrate` batches for "int8") implies `optimize`:
    `archspec.optimize(module, passes, dtype=dtype, calibrate=calibrate)`.
    `seed`: seed torch's random generators first (`torch.manual_seed`), so that two builds with
    the same seed have the same initial weights.
    """
    from .backends.torch_fx import build_module

    if isinstance(spec, TypedGraph) and vars:
        raise TypeError("a compiled graph has its variables fixed; pass the spec or its path to override them")
    typed = spec if isinstance(spec, TypedGraph) else compile(spec, **vars)
    check_memory(typed, device, max_memory)
    if seed is not None:
        import torch

        torch.manual_seed(seed)
    module = build_module(typed, device=device)
    if weights is not None:
        from .weights import load_weights

        load_weights(module, typed, weights)
    if optimize is not False or dtype != "fp32":
        from .passes import optimize as run_passes

        passes = None if optimize is True or optimize is False else optimize
        return run_passes(module.eval(), passes, dtype=dtype, calibrate=calibrate)  # type: ignore[return-value]
    return module
