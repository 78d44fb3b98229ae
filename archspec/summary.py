"""Summary tables of a typed graph: per layer, and per block as a paper prints it. Torch-free.

Two views, each a `Table` (columns, raw rows, total rows, notes) that renders
to JSON, CSV and Markdown here and to a terminal in `archspec.cli.summary`:

- `layer_table`: every scope (block instance, sequence, merge, repeat, head)
  and every primitive op in spec order; scope rows roll up their subtree.
- `paper_table`: one row per block instance plus the top-level ops, with the
  block's widths under its `columns:` labels, as in GoogLeNet's Table 1.

Conventions (docs/reports.md): one MAC per multiply-add of conv and linear,
every other op 0; MACs are those of the inference graph; activation memory is
the sum over inference-graph nodes (input included) of output elements × 4 B.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .infer import TypedGraph
from .ir import Scope
from .ops import REGISTRY
from .ops.common import fmt_shape, fmt_window
from .ops.registry import channels_last, tokens
from .table import Column, Table, fmt_bytes, fmt_int

BYTES_PER_ELEMENT = 4  # float32
WEIGHT_KINDS = ("conv", "linear", "attention")
PAPER_KINDS = ("conv", "pool", "linear", "regularize", "merge", "tokens")
"""Top-level op kinds that get a row in the paper view even without parameters (a ViT's `to_tokens` and
`select_token` change the shape the rows after them read)."""
PAPER_TYPES = {"conv": "convolution", "maxpool": "max pool", "avgpool": "avg pool",
               "global_avgpool": "avg pool", "adaptive_avgpool": "avg pool",
               "adaptive_maxpool": "max pool", "linear": "linear"}


# -- shared facts --------------------------------------------------------------

def members(typed: TypedGraph, path: str) -> list[str]:
    """Nodes of the subtree at `path` (the node `path` itself included), in graph order."""
    prefix = path + "/"
    return [n for n in typed.order if n == path or n.startswith(prefix)]


def weights(typed: TypedGraph, name: str) -> int:
    """Weights of a conv or linear node, biases left out (the paper's convention); 0 for other ops."""
    node = typed.net.nodes[name]
    op = REGISTRY.get(node.op)
    if op is None or op.kind not in WEIGHT_KINDS:
        return 0
    ins = [typed.shape(s) for s in typed.graph.inputs[name]]
    return op.count_weights(node.attrs, ins, typed.shape(name))


def activation_bytes(typed: TypedGraph) -> int:
    """Float32 bytes of every inference-graph node's output for one image, the input included."""
    return BYTES_PER_ELEMENT * sum(math.prod(typed.info[n].shape) for n in typed.graph.eval_nodes())


def totals(typed: TypedGraph) -> dict[str, int]:
    """Network totals. Every parameter is trainable (batch-norm running stats are buffers)."""
    names = typed.graph.eval_nodes()
    return {
        "params": typed.total("params"),
        "trainable_params": typed.total("params"),
        "params_inference": typed.total("params", inference=True),
        "weights_inference": sum(weights(typed, n) for n in names),
        "macs": typed.total("macs", inference=True),
        "macs_training": typed.total("macs"),
        "activation_bytes": activation_bytes(typed),
    }


def node_text(typed: TypedGraph, name: str) -> str:
    """What a node computes, e.g. `conv 7×7/2, 64`."""
    node = typed.net.nodes[name]
    return REGISTRY[node.op].describe(node.attrs)


# -- per-layer view ------------------------------------------------------------

def layer_rows(typed: TypedGraph, depth: int | None = None) -> list[dict[str, Any]]:
    """Scope and node rows in spec order, down to `depth` (1 = top-level only; None = all)."""
    rows: list[dict[str, Any]] = []
    _walk(typed, "", 1, depth, rows)
    return rows


def _walk(typed: TypedGraph, path: str, level: int, depth: int | None, rows: list[dict[str, Any]]) -> None:
    scopes = typed.net.scopes
    for child in scopes[path].children:
        if child in scopes and child != path:
            rows.append(_scope_row(typed, scopes[child], level))
            if depth is None or level < depth:
                _walk(typed, child, level + 1, depth, rows)
        else:
            rows.append(_node_row(typed, child, level))


def _scope_row(typed: TypedGraph, scope: Scope, level: int) -> dict[str, Any]:
    out = typed.info.get(scope.output) if scope.output else None
    return {"path": scope.path, "depth": level, "kind": scope.kind, "op": typed.net.describe(scope), "attrs": "",
            "shape": out.shape if out else None, "params": typed.scope_total(scope.path, "params"),
            "macs": typed.scope_total(scope.path, "macs"), "train_only": typed.net.train_only(scope)}


def _node_row(typed: TypedGraph, name: str, level: int) -> dict[str, Any]:
    node, info = typed.net.nodes[name], typed.info[name]
    attrs = node_text(typed, name)
    return {"path": name, "depth": level, "kind": "op", "op": node.op, "attrs": "" if attrs == node.op else attrs,
            "shape": info.shape, "params": info.params, "macs": info.macs, "train_only": node.train_only}


LAYER_COLUMNS = [
    Column("path", "layer"),
    Column("op", "op / block"),
    Column("attrs", "attributes"),
    Column("shape", "output", fmt_shape),
    Column("params", "params", fmt_int, numeric=True),
    Column("macs", "MACs", fmt_int, numeric=True),
    Column("train_only", "mode", lambda b: "training only" if b else ""),
]


def layer_table(typed: TypedGraph, depth: int | None = None) -> Table:
    """The per-layer view: every row of `layer_rows`, then totals and the conventions used."""
    t = totals(typed)
    heads = [h for h, i in typed.net.heads.items() if i.train_only]
    total_rows = [{"path": "total (inference)", "params": t["params_inference"], "macs": t["macs"]}]
    if heads:
        total_rows.append({"path": "total (with training-only heads)", "params": t["params"],
                           "macs": t["macs_training"], "train_only": True})
    notes = [
        f"trainable params: {t['trainable_params']:,} (all params; batch-norm running stats are buffers)",
        f"activation memory, one image, float32: {fmt_bytes(t['activation_bytes'])} "
        "(every inference-graph output, input included, no reuse)",
        "MACs: one per multiply-add of conv, linear and attention; pooling, batch norm, activations, add and concat "
        "count 0",
    ]
    return Table(f"{typed.net.name}  input {fmt_shape(typed.input_shape)}", LAYER_COLUMNS, layer_rows(typed, depth),
                 total_rows, notes, _meta(typed, "layers", t), indent_key="depth")


def _meta(typed: TypedGraph, view: str, t: dict[str, int]) -> dict[str, Any]:
    return {"name": typed.net.name, "file": typed.net.file, "input": list(typed.input_shape), "view": view,
            "overrides": dict(getattr(typed.net.spec, "overrides", None) or {}), "total": t}


# -- paper view ----------------------------------------------------------------

@dataclass(frozen=True)
class Unit:
    """A row of the paper view: a block instance, an inline merge, a head, or a top-level op."""

    path: str
    kind: str  # "block", "merge", "head" or "op"
    train_only: bool


def units(typed: TypedGraph) -> list[Unit]:
    """Paper-view rows in spec order; sequences and repeats are looked through."""
    out: list[Unit] = []
    _units(typed, "", out)
    return out


def _units(typed: TypedGraph, path: str, out: list[Unit]) -> None:
    net = typed.net
    for child in net.scopes[path].children:
        scope = net.scopes.get(child) if child != path else None
        if scope is None:
            if _paper_op(typed, child):
                out.append(Unit(child, "op", net.nodes[child].train_only))
        elif scope.kind == "head" or scope.block is not None or scope.kind == "merge":
            kind = "head" if scope.kind == "head" else "block" if scope.block else "merge"
            out.append(Unit(child, kind, typed.net.train_only(scope)))
        else:
            _units(typed, child, out)


def _paper_op(typed: TypedGraph, name: str) -> bool:
    return REGISTRY[typed.net.nodes[name].op].kind in PAPER_KINDS or typed.info[name].params > 0


def unit_output(typed: TypedGraph, unit: Unit) -> str | None:
    return typed.net.output_of(unit.path)


def unit_label(typed: TypedGraph, unit: Unit) -> str:
    scope = typed.net.scopes.get(unit.path)
    return typed.net.describe(scope) if scope is not None else node_text(typed, unit.path)


def weight_depth(typed: TypedGraph, names: list[str]) -> int:
    """Weight layers (conv, linear) on the longest path through `names`."""
    inside, longest = set(names), dict[str, int]()
    for n in names:  # graph order: inputs first
        own = 1 if weights(typed, n) else 0
        longest[n] = own + max((longest[s] for s in typed.graph.inputs[n] if s in inside), default=0)
    return max(longest.values(), default=0)


def patch(typed: TypedGraph, names: list[str]) -> str:
    """`7×7/2`: kernel/stride of the row's one spatial op (conv or pool); blank if it has several."""
    spatial = [typed.net.nodes[n] for n in names if typed.net.nodes[n].op == "conv"
               or REGISTRY[typed.net.nodes[n].op].kind == "pool"]
    if len(spatial) != 1:
        return ""
    node = spatial[0]
    if node.op == "global_avgpool":
        h, w = typed.shape(typed.graph.inputs[node.name][0])[1:]
        return f"{h}×{w}/1"
    k = getattr(node.attrs, "k", None)
    if k is None:
        return ""
    return fmt_window(k, getattr(node.attrs, "s", None) or k)


def paper_size(shape: tuple[int, ...]) -> str:
    """H×W×C as the paper prints it (a channels-last shape already is); a flat F is shown as 1×1×F, tokens
    as L×D."""
    if tokens(shape):
        return "×".join(map(str, shape))
    if len(shape) != 3:
        return f"1×1×{math.prod(shape)}"
    return "×".join(map(str, shape)) if channels_last(shape) else f"{shape[1]}×{shape[2]}×{shape[0]}"


def _paper_type(typed: TypedGraph, unit: Unit, columns: dict[str, tuple[str, ...]]) -> str:
    scope = typed.net.scopes.get(unit.path)
    if scope is not None and scope.block is not None:
        return scope.block if scope.block in columns else scope.label()
    if scope is not None:
        return typed.net.describe(scope)
    node = typed.net.nodes[unit.path]
    if node.op == "dropout":
        return f"dropout ({node.attrs.p:.0%})"
    return PAPER_TYPES.get(node.op, node.op)


def block_columns(typed: TypedGraph) -> dict[str, tuple[str, ...]]:
    """Block name -> its `columns:` labels, for blocks that declare them."""
    spec = typed.net.spec
    blocks = spec.blocks if spec is not None else {}
    return {name: b.columns for name, b in blocks.items() if b.columns}


def paper_row(typed: TypedGraph, unit: Unit, columns: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """One paper-view row; widths keyed by column label."""
    names = members(typed, unit.path)
    out = unit_output(typed, unit)
    scope = typed.net.scopes.get(unit.path)
    row: dict[str, Any] = {
        "path": unit.path, "type": _paper_type(typed, unit, columns), "patch": patch(typed, names),
        "output": paper_size(typed.shape(out)) if out in typed.info else "",
        "shape": typed.shape(out) if out in typed.info else None, "depth": weight_depth(typed, names)}
    if scope is not None and scope.block in columns and scope.args is not None:
        labels = columns[scope.block][:len(scope.args)]
        values = list(scope.args.values())[:len(labels)]
        row.update({"_columns": labels, **{label: _arg(v) for label, v in zip(labels, values, strict=True)}})
    w = sum(weights(typed, n) for n in names)
    macs = sum(typed.info[n].macs for n in names)
    row.update(weights=w, params_k=round(w / 1024, 4), params=sum(typed.info[n].params for n in names),
               macs=macs, ops_m=round(macs / 1e6, 4), train_only=unit.train_only)
    return row


def _arg(v: Any) -> Any:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _nonzero(v: int) -> str:
    return f"{v:,}" if v else ""


def _k(v: float) -> str:
    return f"{v:.1f}K" if v else ""


def _m(v: float) -> str:
    return f"{v:.1f}M" if v else ""


def _paper_total(label: str, rows: list[dict[str, Any]], params: int, macs: int) -> dict[str, Any]:
    """A total row; weights are summed over the rows (every weight lies in some row), the rest is exact."""
    w = sum(r["weights"] for r in rows)
    return {"path": label, "weights": w, "params_k": round(w / 1024, 4), "params": params, "macs": macs,
            "ops_m": round(macs / 1e6, 4)}


def paper_table(typed: TypedGraph) -> Table:
    """The paper view (GoogLeNet's Table 1 layout): params in K = 1024 weights, ops in M = 10^6 MACs."""
    cols = block_columns(typed)
    rows = [paper_row(typed, u, cols) for u in units(typed)]
    labels = list(dict.fromkeys(label for r in rows for label in r.get("_columns", ())))
    columns = [Column("path", "name"), Column("type", "type"), Column("patch", "patch size/stride"),
               Column("output", "output size"), Column("depth", "depth", numeric=True),
               *[Column(label, label, numeric=True) for label in labels],
               Column("params_k", "params", _k, numeric=True), Column("params", "params (all)", _nonzero, numeric=True),
               Column("macs", "ops", lambda v: _m(v / 1e6), numeric=True),
               Column("train_only", "mode", lambda b: "training only" if b else "")]
    t = totals(typed)
    total_rows = [_paper_total("total (inference)", [r for r in rows if not r["train_only"]], t["params_inference"],
                               t["macs"])]
    if any(r["train_only"] for r in rows):
        total_rows.append(_paper_total("total (with training-only heads)", rows, t["params"], t["macs_training"]))
    notes = [
        "params: conv and linear weights only (no biases, no batch norm) in K = 1024, the convention of "
        "GoogLeNet's Table 1; 'params (all)' counts every parameter",
        "ops: multiply-adds of conv and linear layers in M = 10^6",
        "depth: weight layers (conv, linear) on the longest path through the row",
        "top-level activations, flatten and parameter-free normalisation (LRN) get no row, as in the paper",
    ]
    return Table(f"{typed.net.name}  input {fmt_shape(typed.input_shape)}  (paper view)", columns, rows,
                 total_rows, notes, _meta(typed, "paper", t))
