"""archspec: a declarative neural-architecture compiler.

    spec = archspec.load("specs/googlenet.yaml", num_classes=10)   # validated Spec
    graph = archspec.compile(spec)      # shapes, params, MACs per node; no torch
    model = archspec.build(spec)        # torch.fx.GraphModule (ArchModule)
    fast = archspec.optimize(model)     # inference module: BN folded, convs fused

Everything except `build` and `optimize` runs without importing torch.
"""

from __future__ import annotations

from typing import Any

from .check import CheckResult, check_file
from .errors import Diagnostic, Location, SpecError
from .expect import check_expect
from .infer import TypedGraph, min_input
from .pipeline import build, compile, load, loads
from .spec import Spec

__all__ = [
    "ArchModule", "CheckResult", "Diagnostic", "Location", "Spec", "SpecError", "TypedGraph",
    "build", "check_expect", "check_file", "compile", "load", "loads", "min_input", "optimize",
]


def __getattr__(name: str) -> Any:
    if name == "ArchModule":  # imported lazily: it needs torch
        from .backends.torch_fx import ArchModule

        return ArchModule
    if name == "optimize":
        from .passes import optimize

        return optimize
    raise AttributeError(f"module 'archspec' has no attribute {name!r}")
