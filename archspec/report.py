"""Report backend: the numbers a user reads about a compiled network."""

from __future__ import annotations

from collections import Counter
from typing import Any

from .infer import TypedGraph
from .ir import INPUT
from .ops.common import fmt_shape
from .summary import totals


def overview(typed: TypedGraph) -> dict[str, Any]:
    """Totals of a network: ops, params (all and at inference), MACs, outputs."""
    net = typed.net
    ops = Counter(net.nodes[n].op for n in typed.order if n != INPUT)
    t = totals(typed)
    return {
        "name": net.name,
        "file": net.file,
        "input": list(typed.input_shape),
        "nodes": sum(ops.values()),
        "ops": dict(ops.most_common()),
        "blocks": sum(1 for s in net.scopes.values() if s.kind == "block"),
        "params": t["params"],
        "params_inference": t["params_inference"],
        "macs": t["macs"],
        "outputs": {k: list(v) for k, v in typed.output_shapes().items()},
        "train_only": [h for h, i in net.heads.items() if i.train_only],
    }


def si(n: float) -> str:
    """3 significant digits with a K/M/G/T suffix (powers of 1000)."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def overview_lines(typed: TypedGraph) -> list[tuple[str, str]]:
    """The overview as (label, text) rows for a terminal."""
    o = overview(typed)
    heads = typed.net.heads
    outputs = " · ".join(
        f"{k} {fmt_shape(tuple(v))}" + (" (training only)" if k in heads and heads[k].train_only else "")
        for k, v in o["outputs"].items())
    top_ops = ", ".join(f"{n} {op}" for op, n in list(o["ops"].items())[:6])
    params = f"{o['params']:,}"
    if o["params_inference"] != o["params"]:
        params += f"  ({o['params_inference']:,} at inference, without {', '.join(o['train_only'])})"
    return [
        ("input", fmt_shape(tuple(o["input"]))),
        ("ops", f"{o['nodes']} ({top_ops}) in {o['blocks']} block instances"),
        ("params", params),
        ("MACs", f"{o['macs']:,}  ({si(o['macs'])} multiply-adds per image at inference)"),
        ("outputs", outputs),
    ]
