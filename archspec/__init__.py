"""archspec: a declarative neural-architecture compiler.

    spec = archspec.load("specs/googlenet.yaml", num_classes=10)   # validated Spec
    graph = archspec.compile(spec)      # shapes, params, MACs per node; no torch
    model = archspec.build(spec)        # torch.fx.GraphModule (ArchModule)
    fast = archspec.optimize(model)     # inference module: BN folded, convs fused
    loss = archspec.weighted_loss(model, model(x), y)   # main + each head's loss_weight × its loss
    text = archspec.import_module(torch_module, input=(3, 224, 224))   # a PyTorch model as spec text
    archspec.load_plugins("mypkg.ops")  # ops of your own (and installed plugins'), before `load`: docs/plugins.md

Everything except `build`, `optimize`, `ArchModule` and the training helpers runs without importing torch.
"""

from __future__ import annotations

from typing import Any

from .check import CheckResult, check_file
from .errors import Diagnostic, Location, SpecError
from .expect import check_expect
from .infer import TypedGraph, min_input
from .pipeline import build, compile, load, loads
from .plugins import load_plugins
from .spec import Spec

__all__ = [
    "ArchModule", "CheckResult", "Diagnostic", "Location", "Spec", "SpecError", "TypedGraph",
    "build", "check_expect", "check_file", "compile", "import_module", "load", "loads", "load_plugins", "loss_terms",
    "loss_weights",
    "min_input",
    "optimize", "weighted_loss",
]

_TRAINING = ("loss_terms", "loss_weights", "weighted_loss")


def __getattr__(name: str) -> Any:
    if name == "ArchModule":  # imported lazily: it needs torch
        from .backends.torch_fx import ArchModule

        return ArchModule
    if name == "import_module":  # imported lazily: it needs torch
        from .importer import import_module

        return import_module
    if name == "optimize":
        from .passes import optimize

        return optimize
    if name in _TRAINING:  # imported lazily: they need torch
        from . import training

        return getattr(training, name)
    raise AttributeError(f"module 'archspec' has no attribute {name!r}")
