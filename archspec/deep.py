"""`archspec check --deep`: confirm every analytic shape against torch running the module.

The module is built on the meta device, so no memory is allocated and any
size works; a forward runs in eval mode (inference graph) and in training mode
(training graph, heads included). Every fx node's tensor is compared with the
shape inference computed for the archspec node it came from (its
`meta["archspec"]["path"]`); nodes emitted as identities have no fx node and
are compared through the tensor they pass on. A disagreement is archspec's own
bug, reported as an `internal-shape-mismatch` diagnostic. Needs torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx

from .backends.torch_fx import build_module
from .errors import Diagnostic, SpecError
from .infer import TypedGraph
from .ir import INPUT
from .ops.common import fmt_shape

BATCH = 2
"""Batch of the meta forward: 2, so that batch norm in training mode accepts 1×1 maps."""


@dataclass
class DeepReport:
    """Diagnostics of a deep check and how many nodes each mode compared."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.diagnostics


class _Recorder(fx.Interpreter):
    """Runs an fx graph and keeps each archspec node's output shape (batch left out)."""

    def __init__(self, module: fx.GraphModule, graph: fx.Graph):
        super().__init__(module, graph=graph)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.current: str | None = None

    def run_node(self, n: fx.Node) -> Any:
        self.current = n.meta.get("archspec", {}).get("path")
        result = super().run_node(n)
        if n.op == "placeholder":
            self.shapes[INPUT] = tuple(result.shape[1:])
        elif self.current is not None and isinstance(result, torch.Tensor):
            self.shapes[self.current] = tuple(result.shape[1:])
        return result


def deep_check(typed: TypedGraph) -> DeepReport:
    """Build `typed` on the meta device and compare every node's shape in eval and training mode."""
    start = time.perf_counter()
    report = DeepReport()
    try:
        module = build_module(typed, device="meta")
    except SpecError as exc:
        report.diagnostics += exc.diagnostics
        return report
    for mode in ("eval", "train"):
        module.train(mode == "train")
        graph = module.train_graph if mode == "train" else module.graph
        names = typed.order if mode == "train" else typed.graph.eval_nodes()
        report.diagnostics += _run_mode(typed, module, graph, names, mode, report)
    report.seconds = time.perf_counter() - start
    return report


def _run_mode(typed: TypedGraph, module: fx.GraphModule, graph: fx.Graph, names: list[str], mode: str,
              report: DeepReport) -> list[Diagnostic]:
    rec = _Recorder(module, graph)
    x = torch.empty((BATCH, *typed.input_shape), device="meta")
    try:
        with torch.no_grad():
            rec.run(x)
    except Exception as exc:  # noqa: BLE001 - any torch failure is archspec's bug; name the node
        return [_torch_error(typed, rec.current, mode, exc)]
    seen = _with_identities(typed, names, rec.shapes)
    report.checked[mode] = len(seen)
    return [_mismatch(typed, n, seen[n], mode) for n in names if n in seen and seen[n] != tuple(typed.shape(n))]


def _with_identities(typed: TypedGraph, names: list[str], shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Shapes of nodes emitted as identities are those of the tensor they forward."""
    seen = dict(shapes)
    for n in names:
        if n not in seen and typed.graph.inputs.get(n):
            src = typed.graph.inputs[n][0]
            if src in seen:
                seen[n] = seen[src]
    return seen


def _mismatch(typed: TypedGraph, name: str, found: tuple[int, ...], mode: str) -> Diagnostic:
    node = typed.net.nodes[name]
    return Diagnostic(
        "internal-shape-mismatch",
        f"shape inference says {fmt_shape(typed.shape(name))}, torch computed {fmt_shape(found)} ({mode} mode)",
        loc=node.loc, path=name, expected=fmt_shape(typed.shape(name)), found=fmt_shape(found),
        hint=f"this is a bug in archspec's shape rule for '{node.op}', not in the spec; please report it")


def _torch_error(typed: TypedGraph, name: str | None, mode: str, exc: Exception) -> Diagnostic:
    node = typed.net.nodes.get(name) if name else None
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return Diagnostic("internal-torch-error", f"torch failed to run this node ({mode} mode): {first}",
                      loc=node.loc if node else None, path=name,
                      hint="shape inference accepted it, so this is a bug in archspec; please report it")
