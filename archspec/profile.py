"""Measured time per spec block: run the built network on random tensors and time every fx node.

    table = profile("specs/googlenet.yaml", batch=8, depth=1)   # a `table.Table`, one row per block

Each fx node of the inference graph is timed on its own (an `fx.Interpreter`
whose `run_node` is wrapped in `perf_counter`, with CUDA synchronised around
each node on a GPU); the median over `repeat` runs is taken per node, and a
block's time is the sum of its nodes' medians, so the rows of one level add
up to the node total exactly. The plain forward (no per-node timing) is timed
in the same runs, alternating, so the cost of timing each node can be stated.

After `archspec.optimize`, passes rename and merge nodes: each keeps the spec
path it computes in `node.meta["archspec"]["path"]`, and a merged node all of
them in `["paths"]`; its time is split over them in proportion to their MACs
(a conv with its folded BN and fused ReLU: all to the conv; three merged 1×1
convs: by their sizes), evenly where none has MACs. Nodes with no path
(layout conversions, splits added by a pass) are shown on one row of their own.
Rows are those of `archspec summary` (`summary.layer_rows`), collapsed by `depth`.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import fx

from .files import atomic_output
from .infer import TypedGraph
from .memory import check_memory
from .ops import REGISTRY
from .ops.common import fmt_shape
from .summary import layer_rows, totals
from .table import Column, Table, fmt_int

DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": None}
"""--dtype names; fp32 runs as built; as built, bf16 and fp16 run under `torch.autocast`; optimised, they are
real casts (`archspec.optimize(dtype=)`), and int8 (optimised only) is quantised from random calibration batches."""
OTHER = "(outside the spec)"
"""The row of fx nodes that no spec path owns: layout conversions, splits and the like added by passes."""
TOP = 5
"""How many of the slowest rows get a rank."""


class ProfileError(RuntimeError):
    """A profile that cannot be run as asked (CUDA graphs on a CPU, an unknown pass, a missing extra)."""


def profile(spec: Any, *, vars: dict[str, Any] | None = None, batch: int = 1, device: str = "cpu",
            dtype: str = "fp32", cuda_graphs: bool = False, optimize: bool = False,
            passes: Sequence[str] | None = None, depth: int | None = 1, repeat: int = 10, warmup: int = 2,
            seed: int = 0, calibrate: int = 2) -> Table:
    """Build SPEC (a path, `Spec` or `TypedGraph`), time it on a random `batch`, and tabulate time per block.

    `passes` (a list of pass names) implies `optimize`. With `optimize`, a `dtype` other than fp32 is
    `archspec.optimize(dtype=)`'s (int8 calibrated on `calibrate` random batches). Raises `DeviceError` for
    a device this machine lacks, `LowPrecisionError` for a dtype it cannot run and `ProfileError` for a
    combination that cannot run.
    """
    from .backends.torch_fx import build_module, resolve_device
    from .pipeline import compile

    dev = resolve_device(device) or torch.device("cpu")
    if dtype not in DTYPES:
        raise ProfileError(f"unknown dtype '{dtype}' (choose {', '.join(DTYPES)})")
    if cuda_graphs and dev.type != "cuda":
        raise ProfileError("CUDA graphs need a CUDA device (--device cuda)")
    optimized = optimize or passes is not None
    if dtype == "int8" and not optimized:
        raise ProfileError("int8 runs in the optimised module only: add --optimize")
    typed = spec if isinstance(spec, TypedGraph) else compile(spec, **(vars or {}))
    check_memory(typed, dev, "auto", batch=batch)  # before the allocator fails on a batch that cannot fit
    torch.manual_seed(seed)
    module = build_module(typed, device=dev).eval()
    if optimized:
        batches = [torch.randn(batch, *typed.input_shape, device=dev) for _ in range(calibrate)] \
            if dtype == "int8" else None
        module = optimize_module(module, passes, batch, dtype=dtype, calibrate=batches)
    if not isinstance(module, fx.GraphModule):
        raise ProfileError(f"cannot time a {type(module).__name__} node by node: it is not a torch.fx.GraphModule")
    x = torch.randn(batch, *typed.input_shape, device=dev)
    timed = measure(module, x, None if optimized else DTYPES[dtype], cuda_graphs, repeat, warmup)
    settings = {"batch": batch, "device": str(dev), "dtype": dtype, "cuda_graphs": cuda_graphs,
                "optimized": optimized, "passes": list(passes) if passes is not None else None,
                "repeat": repeat, "warmup": warmup, "depth": depth}
    return profile_table(typed, timed, settings)


def optimize_module(module: Any, passes: Sequence[str] | None, batch: int = 8, dtype: str = "fp32",
                    calibrate: Any = None) -> Any:
    """`archspec.optimize(module, passes, dtype=, calibrate=)`, weights packed for `batch` where a pass packs them."""
    from .passes import optimize
    from .passes.lowp import LowPrecisionError

    try:
        return optimize(module, passes=list(passes) if passes is not None else None, batch=batch, dtype=dtype,
                        calibrate=calibrate)
    except LowPrecisionError:  # a ValueError too, but with a code of its own: the caller reports it
        raise
    except ValueError as exc:  # an unknown pass name, with the list of passes
        raise ProfileError(str(exc)) from None


# -- measuring -----------------------------------------------------------------

def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """`torch.autocast` to `dtype` (caching off, so CUDA graphs can capture it), or nothing for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype, cache_enabled=False)


def synchronizer(device: torch.device) -> Callable[[], None]:
    """A function that waits for the device's queued work (a no-op on the CPU)."""
    return torch.cuda.synchronize if device.type == "cuda" else lambda: None


def forward_runner(module: Any, x: torch.Tensor, dtype: torch.dtype | None = None,
                   cuda_graphs: bool = False) -> Callable[[], Any]:
    """A no-argument function running one inference forward of `module` on `x` (waiting for the device).

    With `cuda_graphs` the forward is captured once in a CUDA graph (after warm-up on a side
    stream) and each call replays it on the same input buffer.
    """
    sync = synchronizer(x.device)

    def eager() -> Any:
        with torch.inference_mode(), autocast(x.device, dtype):
            out = module(x)
        sync()
        return out
    if not cuda_graphs:
        return eager
    if x.device.type != "cuda":
        raise ProfileError("CUDA graphs need a CUDA device (--device cuda)")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            eager()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.inference_mode(), autocast(x.device, dtype), torch.cuda.graph(graph):
        out = module(x)

    def replay() -> Any:
        graph.replay()
        sync()
        return out
    return replay


class NodeTimer(fx.Interpreter):
    """Runs a GraphModule node by node and records the wall time of each computing node."""

    def __init__(self, module: fx.GraphModule, sync: Callable[[], None]):
        super().__init__(module)
        self.sync = sync
        self.times: dict[fx.Node, list[float]] = defaultdict(list)

    def run_node(self, n: fx.Node) -> Any:
        if n.op not in ("call_module", "call_function", "call_method"):
            return super().run_node(n)
        self.sync()
        start = time.perf_counter()
        out = super().run_node(n)
        self.sync()
        self.times[n].append(time.perf_counter() - start)
        return out


def measure(module: fx.GraphModule, x: torch.Tensor, dtype: torch.dtype | None = None, cuda_graphs: bool = False,
            repeat: int = 10, warmup: int = 2) -> dict[str, Any]:
    """Median seconds per fx node and of the plain forward, the two timed in alternating runs."""
    timer = NodeTimer(module, synchronizer(x.device))
    forward = forward_runner(module, x, dtype, cuda_graphs)

    def by_node() -> None:
        with torch.inference_mode(), autocast(x.device, dtype):
            timer.run(x)
    for _ in range(warmup):
        forward()
        by_node()
    timer.times.clear()
    plain = []
    for _ in range(repeat):
        start = time.perf_counter()
        forward()
        plain.append(time.perf_counter() - start)
        by_node()
    return {"nodes": {n: statistics.median(ts) for n, ts in timer.times.items()}, "forward": plain, "module": module}


# -- attributing ---------------------------------------------------------------

def spec_paths(node: fx.Node) -> list[str]:
    """The spec paths an fx node computes: one, several for a node merged by a pass, none for a pass's helper.

    A merging pass lists every path in `meta["archspec"]["paths"]`; `path` alone may be a string or a list.
    """
    meta = node.meta.get("archspec", {})
    found = meta.get("paths", meta.get("path"))
    if found is None:
        return []
    return [found] if isinstance(found, str) else list(dict.fromkeys(found))


def module_op(class_name: str) -> str | None:
    """The spec op computing a module of this class, by the ops' `torch_modules` fragments (the longest
    fragment found wins: `ReLU6` over `ReLU`, `AdaptiveAvgPool` over `AvgPool`); None if no op claims it."""
    found = [(len(f), op.name) for op in REGISTRY.values() for f in op.torch_modules if f in class_name]
    return max(found, key=lambda lf: lf[0])[1] if found else None


def op_kind(node: fx.Node, module: fx.GraphModule | None = None) -> str:
    """The spec op of a node (`conv`, `maxpool`, `concat`, ...), else what a pass made it call."""
    op = node.meta.get("archspec", {}).get("op")
    if op:
        return str(op)
    if node.op == "call_module" and module is not None:
        name = type(module.get_submodule(str(node.target))).__name__
        return module_op(name) or name
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


class Attribution:
    """Measured seconds spread over the spec: per node path, per scope (its subtree), per op kind."""

    def __init__(self, node_seconds: dict[fx.Node, float], module: fx.GraphModule | None = None,
                 macs: Callable[[str], int] | None = None):
        self.own: dict[str, float] = defaultdict(float)
        self.subtree: dict[str, float] = defaultdict(float)
        self.per_op: dict[str, float] = defaultdict(float)
        self.other, self.merged = 0.0, 0
        for node, seconds in node_seconds.items():
            self.per_op[op_kind(node, module)] += seconds
            paths = spec_paths(node)
            if not paths:
                self.other += seconds
            self.merged += len(paths) > 1
            for path, share in zip(paths, _shares(paths, macs), strict=True):
                self.own[path] += seconds * share
                for scope in _ancestors(path):
                    self.subtree[scope] += seconds * share

    def seconds(self, row: dict[str, Any]) -> float:
        """A layer row's time: its own node's for an op row, its subtree's for a scope row.

        A scope and the node computing its output may share a path (a block's concat), hence the two maps.
        """
        return self.own.get(row["path"], 0.0) if row["kind"] == "op" else self.subtree.get(row["path"], 0.0)


def _shares(paths: list[str], macs: Callable[[str], int] | None) -> list[float]:
    """How a node's time divides over the spec nodes it computes: by MACs, evenly where none has any.

    An even split would rank a folded BN and a fused ReLU as costly as the conv that does all the work.
    """
    if len(paths) < 2:
        return [1.0] * len(paths)
    weights = [macs(p) for p in paths] if macs is not None else []
    total = sum(weights)
    return [w / total for w in weights] if total > 0 else [1 / len(paths)] * len(paths)


def _ancestors(path: str) -> Iterator[str]:
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        yield "/".join(parts[:i])


# -- the table -----------------------------------------------------------------

def _ms(v: float) -> str:
    return f"{v:.2f}"


def _rate(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 1 else f"{v:.3f}"


COLUMNS = [
    Column("path", "block"),
    Column("op", "op / block"),
    Column("time_ms", "time ms", _ms, numeric=True),
    Column("share", "share", lambda v: f"{v:.1%}", numeric=True),
    Column("macs", "MACs", fmt_int, numeric=True),
    Column("gflops", "GFLOP/s", _rate, numeric=True),
    Column("rank", "top", lambda v: f"#{v}", numeric=True),
]


def profile_table(typed: TypedGraph, timed: dict[str, Any], settings: dict[str, Any]) -> Table:
    """One row per `summary` layer row of the inference graph down to `depth`, with measured time."""
    spread = Attribution(timed["nodes"], timed.get("module"), lambda path: _node_macs(typed, path))
    node_total = sum(timed["nodes"].values())
    batch, other = settings["batch"], spread.other
    rows = []
    for r in layer_rows(typed, settings["depth"]):
        if r["train_only"]:
            continue
        seconds = spread.seconds(r)
        rows.append({"path": r["path"], "depth": r["depth"], "kind": r["kind"], "op": r["op"],
                     "time_ms": seconds * 1e3, "share": seconds / node_total if node_total else 0.0,
                     "macs": r["macs"], "gflops": _gflops(r["macs"] * batch, seconds)})
    if other:
        rows.append({"path": OTHER, "depth": 1, "kind": "other", "op": "", "time_ms": other * 1e3,
                     "share": other / node_total, "macs": 0, "gflops": None})
    _rank(rows)
    forward = statistics.median(timed["forward"])
    macs = totals(typed)["macs"]
    total_rows = [
        {"path": "total (sum of nodes)", "time_ms": node_total * 1e3, "share": 1.0, "macs": macs,
         "gflops": _gflops(macs * batch, node_total)},
        {"path": "forward (no per-node timing)", "time_ms": forward * 1e3, "macs": macs,
         "gflops": _gflops(macs * batch, forward)}]
    by_op = {k: v / node_total for k, v in sorted(spread.per_op.items(), key=lambda kv: -kv[1])} if node_total else {}
    meta = {"name": typed.net.name, "file": typed.net.file, "input": list(typed.input_shape), "view": "profile",
            **settings, "node_total_ms": node_total * 1e3, "forward_ms": forward * 1e3,
            "forward_min_ms": min(timed["forward"]) * 1e3, "forward_max_ms": max(timed["forward"]) * 1e3,
            "images_per_s": batch / forward, "by_op": by_op, "merged_nodes": spread.merged}
    return Table(_title(typed, settings), COLUMNS, rows, total_rows, _notes(meta), meta, indent_key="depth")


def _node_macs(typed: TypedGraph, path: str) -> int:
    info = typed.info.get(path)
    return info.macs if info is not None else 0


def _gflops(macs: int, seconds: float) -> float | None:
    """Achieved GFLOP/s; None for rows without multiply-adds (pooling, concat, ...)."""
    return 2 * macs / seconds / 1e9 if seconds > 0 and macs else None


def _rank(rows: list[dict[str, Any]]) -> None:
    """Rank the TOP slowest rows among those shown unexpanded (the rows that partition the network)."""
    leaves = [r for i, r in enumerate(rows) if i + 1 == len(rows) or rows[i + 1]["depth"] <= r["depth"]]
    for place, row in enumerate(sorted(leaves, key=lambda r: -r["time_ms"])[:TOP], start=1):
        if row["time_ms"] > 0:
            row["rank"] = place


def _title(typed: TypedGraph, s: dict[str, Any]) -> str:
    how = s["dtype"] + (", CUDA graphs" if s["cuda_graphs"] else "")
    what = "optimised" if s["optimized"] else "as built"
    return f"{typed.net.name}  input {fmt_shape(typed.input_shape)}  batch {s['batch']}  {s['device']} {how}  ({what})"


def _notes(m: dict[str, Any]) -> list[str]:
    ops = ", ".join(f"{k} {v:.0%}" for k, v in list(m["by_op"].items())[:6] if v >= 0.005)
    overhead = m["node_total_ms"] / m["forward_ms"] - 1 if m["forward_ms"] else 0.0
    notes = [
        f"forward: {m['forward_ms']:.2f} ms per batch of {m['batch']} (median of {m['repeat']}, "
        f"{m['forward_min_ms']:.2f}–{m['forward_max_ms']:.2f} ms), {m['images_per_s']:.1f} images/s",
        f"time by op: {ops}",
        f"time: median of {m['repeat']} runs of each fx node after {m['warmup']} warm-up run(s), a block's time is the "
        f"sum of its nodes'; timing node by node changes the total by {overhead:+.0%} against the plain forward",
        "GFLOP/s: 2 × MACs × batch / time; MACs per image as in `archspec summary`",
    ]
    if m["merged_nodes"]:
        notes.append(f"{m['merged_nodes']} fx nodes compute several spec nodes (merged by passes); "
                     "their time is split among them by MACs")
    if m["cuda_graphs"]:
        notes.append("CUDA graphs: the forward line replays one captured graph; per-node times run without it")
    return notes


# -- the chart -----------------------------------------------------------------

def draw_chart(table: Table, output: str | Path) -> None:
    """A horizontal bar chart (PNG, SVG or PDF by suffix) of the rows that partition the network."""
    suffix = Path(output).suffix.lower().lstrip(".")
    if suffix not in ("png", "svg", "pdf"):
        raise ProfileError(f"cannot draw a chart as '.{suffix}'; use .png, .svg or .pdf")
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ProfileError("drawing a chart needs matplotlib: pip install 'archspec[profile]'") from None
    rows = table.rows
    leaves = [r for i, r in enumerate(rows) if i + 1 == len(rows) or rows[i + 1]["depth"] <= r["depth"]]
    fig = Figure(figsize=(8, 1.2 + 0.24 * len(leaves)), layout="constrained")
    ax = fig.add_subplot()
    labels = [r["path"] for r in leaves][::-1]
    values = [r["time_ms"] for r in leaves][::-1]
    colors = ["tab:red" if r.get("rank") else "tab:blue" for r in leaves][::-1]
    bars = ax.barh(labels, values, color=colors)
    ax.bar_label(bars, labels=[f"{r['share']:.1%}" for r in leaves][::-1], padding=3, fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel(f"ms per batch of {table.meta['batch']} (median; red: the {TOP} slowest)")
    ax.set_title(table.title, fontsize=9)
    ax.margins(x=0.12)
    with atomic_output(output) as tmp:
        fig.savefig(tmp, format=suffix)
