"""How much memory a network's weights take, and whether a device has it: checked before `build` allocates.

The estimate is torch-free: parameters come from the typed graph (the op
registry's counts), buffers from each op's `buffer_bytes`; every tensor is float32 except
BatchNorm's int64 step counter. A build that would not fit is refused with
the largest nodes located in the spec, instead of ending in the allocator's
traceback (or in the kernel's OOM killer). The meta device allocates nothing.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any

from .errors import Diagnostic, Location, SpecError
from .infer import TypedGraph
from .ir import INPUT
from .ops import REGISTRY

FLOAT = 4
"""Bytes per parameter and per float buffer (torch's default dtype, float32)."""

TOP = 5
"""The number of largest nodes a refusal names."""

UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12,
         "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$", re.I)

Limit = int | str | None
"""`build`'s `max_memory`: "auto" (what the device has free), bytes, a size such as "2GiB", or None (no check)."""


@dataclass(frozen=True)
class Estimate:
    """Bytes of parameters and buffers (and activations, for a run at a batch), in total and per node."""

    total: int
    nodes: dict[str, int]
    activations: int = 0
    """The peak bytes of live activations of one forward (0 for a build)."""
    batch: int | None = None

    def largest(self, n: int = TOP) -> list[tuple[str, int]]:
        return sorted(((k, v) for k, v in self.nodes.items() if v), key=lambda kv: -kv[1])[:n]


def estimate(typed: TypedGraph) -> Estimate:
    """The bytes `build` would allocate for every parameter and buffer of the network (training heads included)."""
    nodes: dict[str, int] = {}
    for name in typed.order:
        if name == INPUT:
            continue
        node = typed.net.nodes[name]
        ins = [typed.shape(s) for s in typed.graph.inputs[name]]
        nodes[name] = typed.info[name].params * FLOAT + REGISTRY[node.op].buffer_bytes(node.attrs, ins)
    return Estimate(sum(nodes.values()), nodes)


def activations(typed: TypedGraph, batch: int) -> tuple[int, dict[str, int]]:
    """Peak bytes of live float32 activations of an inference forward at `batch`, and each node's output bytes.

    Nodes run in graph order; a tensor is freed after its last consumer (as torch.fx's
    interpreter does), the network's outputs are kept. The input counts as a node.
    """
    eval_nodes = set(typed.graph.eval_nodes())
    order = [n for n in typed.order if n in eval_nodes]
    last: dict[str, int] = {}
    for i, name in enumerate(order):
        for src in typed.graph.inputs[name]:
            last[src] = i
    kept = set(typed.net.outputs.values())
    sizes: dict[str, int] = {}
    live = peak = 0
    for i, name in enumerate(order):
        sizes[name] = math.prod(typed.shape(name)) * batch * FLOAT
        live += sizes[name]
        peak = max(peak, live)
        for src in set(typed.graph.inputs[name]):
            if last[src] == i and src not in kept:
                live -= sizes[src]
    return peak, sizes


def run_estimate(typed: TypedGraph, batch: int) -> Estimate:
    """The bytes a forward at `batch` needs: every weight and buffer, and the peak of live activations."""
    weights = estimate(typed)
    peak, sizes = activations(typed, batch)
    nodes = {name: weights.nodes.get(name, 0) + sizes.get(name, 0) for name in typed.order}
    return Estimate(weights.total + peak, nodes, activations=peak, batch=batch)


def parse_size(text: str | int) -> int:
    """`512MB` -> 512_000_000, `2GiB` -> 2_147_483_648, `1000` -> 1000 bytes; ValueError otherwise."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in UNITS:
        raise ValueError(f"cannot read the size {text!r}: write bytes or a number with a unit, e.g. 512MB or 2GiB")
    return int(float(match.group(1)) * UNITS[unit])


def available(device: Any = None) -> int | None:
    """Bytes free for new tensors on `device` (None, 'cpu', 'cuda:1', a torch.device), or None if unknown/unbounded."""
    kind, _, index = str(device or "cpu").partition(":")
    if kind == "meta":
        return None
    if kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            return None  # the backend says why the device cannot be used
        idx = int(index) if index.isdigit() else torch.cuda.current_device()
        return torch.cuda.mem_get_info(idx)[0] if idx < torch.cuda.device_count() else None
    return host_available()  # cpu, and mps (whose memory is the host's)


def host_available() -> int | None:
    """MemAvailable from /proc/meminfo (free plus reclaimable cache), else free pages, else None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(typed: TypedGraph, device: Any = None, max_memory: Limit = "auto",
                 batch: int | None = None) -> Estimate:
    """Refuse (SpecError `too-much-memory`) a build whose weights exceed `max_memory` on `device`.

    `max_memory="auto"` is what the device has free now; None skips the check;
    the meta device is never refused. With a `batch`, a forward at that batch is
    checked: the weights and the peak of its activations (`profile` runs one).
    """
    est = estimate(typed) if batch is None else run_estimate(typed, batch)
    if max_memory is None or str(device or "cpu").startswith("meta"):
        return est
    if max_memory == "auto":
        limit, what = available(device), f"the {{}} available on {device or 'cpu'}"
    else:
        limit, what = parse_size(max_memory), "the memory limit of {}"
    if limit is not None and est.total > limit:
        raise SpecError([_refusal(typed, est, limit, what)], typed.net.sources)
    return est


def _refusal(typed: TypedGraph, est: Estimate, limit: int, what: str) -> Diagnostic:
    top = [(k, v) for k, v in est.largest(TOP + 1) if k != INPUT][:TOP]
    name, size = top[0]
    node = typed.net.nodes[name]
    params = typed.total("params")
    notes: list[tuple[Location, str]] = []
    for other, nbytes in top[1:]:
        loc = typed.net.nodes[other].loc
        if loc is not None:
            notes.append((loc, f"{other} ({typed.net.nodes[other].op}): {fmt_bytes(nbytes)}"))
    limit_text = what.format(fmt_bytes(limit))
    if est.batch is None:
        return Diagnostic(
            "too-much-memory", f"building {typed.net.name} needs {fmt_bytes(est.total)} for its weights, "
            f"more than {limit_text}", loc=node.loc, path=name, notes=notes,
            expected=f"at most {fmt_bytes(limit)} ({limit:,} bytes)",
            found=f"{fmt_bytes(est.total)} ({est.total:,} bytes: {params:,} float32 params and the buffers); "
                  f"this {node.op} alone takes {fmt_bytes(size)}",
            hint="`--device meta` builds the module without allocating weights; `--max-memory SIZE` sets the "
                 "limit (`max_memory=None` in Python skips the check)")
    return Diagnostic(
        "too-much-memory", f"running {typed.net.name} at batch {est.batch:,} needs {fmt_bytes(est.total)}, "
        f"more than {limit_text}", loc=node.loc, path=name, notes=notes,
        expected=f"at most {fmt_bytes(limit)} ({limit:,} bytes)",
        found=f"{fmt_bytes(est.total)} ({est.total:,} bytes: {fmt_bytes(est.activations)} of activations at "
              f"their peak, {fmt_bytes(est.total - est.activations)} of weights); this {node.op} alone takes "
              f"{fmt_bytes(size)} (its output and weights)",
        hint="lower --batch: the activations grow with it")


def fmt_bytes(n: int) -> str:
    """`360.0 GB`, `512.0 MB`, `840 B` (decimal units, as `--max-memory 512MB` reads them)."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
