"""Compare two typed graphs block by block: the numbers an ablation reports. Torch-free.

Rows are the paper view's units (block instances, inline merges, heads and
top-level ops; see `summary.units`), matched by path. Each row gives both
sides' widths, output shapes, params and MACs, the differences, and in words
what changed: block arguments (`c5 32 → 48`), else the ops inside whose
attributes differ (`branch3/1/conv: conv 3/1, 32 → conv 5/1, 32`), else the
input shape.

A row whose nodes are the same graph on both sides (`graph_equal`: same ops, attributes, edges and weight
names) but written differently, another template or other parameter names, is "same graph", not "changed";
the notes give the verdict for the whole network.
"""

from __future__ import annotations

from typing import Any

from .graph_equal import GraphEquality, graph_equal
from .infer import TypedGraph
from .ir import fmt_arg
from .ops.common import fmt_shape
from .summary import Unit, members, node_text, totals, unit_label, unit_output, units
from .table import Column, Table, fmt_int

MAX_CHANGES = 2


def side_name(typed: TypedGraph) -> str:
    """`specs/googlenet.yaml --set k5=5`."""
    overrides = getattr(typed.net.spec, "overrides", None) or {}
    sets = "".join(f" --set {k}={_arg(v)}" for k, v in overrides.items())
    return f"{typed.net.file}{sets}"


def _arg(v: Any) -> str:
    return "–" if v is None else fmt_arg(v)


def merged_order(a: list[str], b: list[str]) -> list[str]:
    """B's order, with paths only in A placed after their predecessor in A."""
    out = list(b)
    for i, path in enumerate(a):
        if path in out:
            continue
        prev = next((p for p in reversed(a[:i]) if p in out), None)
        out.insert(out.index(prev) + 1 if prev is not None else 0, path)
    return out


def _unit_facts(typed: TypedGraph, unit: Unit | None) -> dict[str, Any]:
    if unit is None:
        return {"label": None, "shape": None, "params": 0, "macs": 0, "input": None, "train_only": False}
    names = members(typed, unit.path)
    out = unit_output(typed, unit)
    inside = set(names)
    outer = next((s for n in names for s in typed.graph.inputs[n] if s not in inside), None)
    return {"label": unit_label(typed, unit), "shape": typed.shape(out) if out in typed.info else None,
            "params": sum(typed.info[n].params for n in names), "macs": sum(typed.info[n].macs for n in names),
            "input": typed.shape(outer) if outer is not None else None, "train_only": unit.train_only}


def _arg_changes(a: TypedGraph, b: TypedGraph, path: str) -> list[str]:
    sa, sb = a.net.scopes.get(path), b.net.scopes.get(path)
    if sa is None or sb is None or sa.args is None or sb.args is None or sa.block != sb.block:
        return []
    keys = list(dict.fromkeys([*sa.args, *sb.args]))
    return [f"{k} {_arg(sa.args.get(k))} → {_arg(sb.args.get(k))}"
            for k in keys if sa.args.get(k) != sb.args.get(k)]


def _op_changes(a: TypedGraph, b: TypedGraph, path: str) -> list[str]:
    def ops(t: TypedGraph) -> dict[str, str]:
        return {n[len(path) + 1:] or n: node_text(t, n) for n in members(t, path)}

    oa, ob = ops(a), ops(b)
    out = []
    for rel in dict.fromkeys([*ob, *oa]):
        if rel not in oa:
            out.append(f"+{rel}")
        elif rel not in ob:
            out.append(f"−{rel}")
        elif oa[rel] != ob[rel]:
            out.append(f"{rel}: {oa[rel]} → {ob[rel]}")
    return out


def changes(a: TypedGraph, b: TypedGraph, path: str, fa: dict[str, Any], fb: dict[str, Any]) -> str:
    """What changed in a row, in words: arguments, else ops, else the input shape."""
    primitive = path not in a.net.scopes and path not in b.net.scopes  # its label says it all
    items = _arg_changes(a, b, path) or ([] if primitive else _op_changes(a, b, path))
    if not items and fa["input"] != fb["input"]:
        items = [f"input {fmt_shape(fa['input'])} → {fmt_shape(fb['input'])}"]
    if len(items) > MAX_CHANGES:
        items = items[:MAX_CHANGES] + [f"(+{len(items) - MAX_CHANGES} more)"]
    return "; ".join(items)


def _same_graph(a: TypedGraph, b: TypedGraph, ua: Unit | None, ub: Unit | None, verdict: GraphEquality,
                fa: dict[str, Any], fb: dict[str, Any]) -> bool:
    """Whether a changed, added or removed row is the same graph written differently: every node of it matches
    one of the other side, and where both sides have it, its numbers are equal."""
    if ua is not None and verdict.nodes_a.intersection(members(a, ua.path)):
        return False
    if ub is not None and verdict.nodes_b.intersection(members(b, ub.path)):
        return False
    return ua is None or ub is None or all(fa[k] == fb[k] for k in ("shape", "params", "macs", "input"))


def diff_row(a: TypedGraph, b: TypedGraph, path: str, ua: Unit | None, ub: Unit | None,
             verdict: GraphEquality | None = None) -> dict[str, Any]:
    fa, fb = _unit_facts(a, ua), _unit_facts(b, ub)
    status = "added" if ua is None else "removed" if ub is None else "same"
    text = changes(a, b, path, fa, fb) if status == "same" else ""
    differs = text or any(fa[k] != fb[k] for k in ("label", "shape", "params", "macs"))
    if status == "same" and differs:
        status = "changed"
    if status != "same" and verdict is not None and _same_graph(a, b, ua, ub, verdict, fa, fb):
        status = "same graph"
    return {"path": path, "status": status,
            "a": fa["label"], "b": fb["label"], "changes": text,
            "shape_a": fa["shape"], "shape_b": fb["shape"],
            "params_a": fa["params"], "params_b": fb["params"], "d_params": fb["params"] - fa["params"],
            "macs_a": fa["macs"], "macs_b": fb["macs"], "d_macs": fb["macs"] - fa["macs"],
            "train_only": fa["train_only"] or fb["train_only"]}


def diff_rows(a: TypedGraph, b: TypedGraph, verdict: GraphEquality | None = None) -> list[dict[str, Any]]:
    """Every unit of A and B, matched by path, in B's order; with `verdict`, rows that are the same graph
    written differently say so."""
    ua, ub = {u.path: u for u in units(a)}, {u.path: u for u in units(b)}
    return [diff_row(a, b, p, ua.get(p), ub.get(p), verdict) for p in merged_order(list(ua), list(ub))]


def _either(a: Any, b: Any, fmt: Any = str) -> str:
    if a is None or b is None:
        return fmt(b if a is None else a) if (a or b) is not None else ""
    return fmt(a) if a == b else f"{fmt(a)} → {fmt(b)}"


def _signed(n: int) -> str:
    return f"{n:+,}" if n else "0"


def _pct(d: int, base: int) -> str:
    return f"{d / base:+.2%}" if base else "n/a"


COLUMNS = [
    Column("path", "block"),
    Column("what", "widths / op"),
    Column("changes", "what changed"),
    Column("output", "output"),
    Column("params_a", "params A", fmt_int, numeric=True),
    Column("params_b", "params B", fmt_int, numeric=True),
    Column("d_params", "Δ params", _signed, numeric=True),
    Column("macs_a", "MACs A", fmt_int, numeric=True),
    Column("macs_b", "MACs B", fmt_int, numeric=True),
    Column("d_macs", "Δ MACs", _signed, numeric=True),
    Column("status", "status"),
]


def _display(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "what": _either(row["a"], row["b"]), "output": _either(row["shape_a"], row["shape_b"], fmt_shape),
            "status": row["status"] + (", training only" if row["train_only"] else "")}


def _total_rows(ta: dict[str, int], tb: dict[str, int]) -> list[dict[str, Any]]:
    def row(label: str, params: str, macs: str) -> dict[str, Any]:
        return {"path": label, "params_a": ta[params], "params_b": tb[params], "d_params": tb[params] - ta[params],
                "macs_a": ta[macs], "macs_b": tb[macs], "d_macs": tb[macs] - ta[macs]}

    return [row("total (inference)", "params_inference", "macs"),
            row("total (with training-only heads)", "params", "macs_training")]


def diff_table(a: TypedGraph, b: TypedGraph, show_all: bool = False) -> Table:
    """A vs B: changed rows (every row with `show_all`), totals, and relative changes."""
    verdict = graph_equal(a, b)
    rows = diff_rows(a, b, verdict)
    hidden = ("same", "same graph")
    shown = [_display(r) for r in rows if show_all or r["status"] not in hidden]
    ta, tb = totals(a), totals(b)
    name_a, name_b = side_name(a), side_name(b)
    notes = [f"A: {name_a}", f"B: {name_b}",
             f"params at inference {_signed(tb['params_inference'] - ta['params_inference'])} "
             f"({_pct(tb['params_inference'] - ta['params_inference'], ta['params_inference'])}), "
             f"MACs {_signed(tb['macs'] - ta['macs'])} ({_pct(tb['macs'] - ta['macs'], ta['macs'])}), "
             f"activation memory {_signed(tb['activation_bytes'] - ta['activation_bytes'])} B",
             "MACs: one per multiply-add of conv, linear and attention, inference graph, one image",
             verdict.summary()]
    same = sum(r["status"] == "same" for r in rows)
    rewritten = sum(r["status"] == "same graph" for r in rows)
    if rewritten:
        notes.append(f"{rewritten} of {len(rows)} rows the same graph written differently (other templates or "
                     "parameters)" + ("" if show_all else ", not shown"))
    if same and not show_all:
        notes.append(f"{same} of {len(rows)} rows unchanged and not shown (--all shows them)")
    meta = {"a": {"spec": name_a, "name": a.net.name, "total": ta}, "b": {"spec": name_b, "name": b.net.name,
                                                                          "total": tb},
            "changed": len(rows) - same - rewritten, "same_graph": rewritten,
            "graph": {"equal": verdict.equal, "nodes": verdict.count, "differences": verdict.differences}}
    return Table(f"diff  A: {name_a}   B: {name_b}", COLUMNS, shown, _total_rows(ta, tb), notes, meta)
