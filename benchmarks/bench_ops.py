"""Where the time goes: archspec optimised and ONNX Runtime, by kind of op, on the same network and input.

    python benchmarks/bench_ops.py                       # GoogLeNet and Inception v3, CPU fp32, batch 8
    python benchmarks/bench_ops.py --specs googlenet --batch 1

Each fx node of the optimised module is timed alone, as `archspec profile` does (torch.profiler
was tried: on 2 cores it adds more time than it measures), and the reference exported to ONNX
runs under ONNX Runtime's own profiler (each node's kernel time). Both profilers slow what they
watch, so they give shares only; the milliseconds are those shares of each plain forward, which
are timed without profilers, alternating, in the same run. This is the table behind the note in
benchmarks/README.md on why the optimised module stays behind ONNX Runtime on a CPU: how much of
the gap is the convolutions themselves and how much pooling and concatenation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

import archspec
from archspec.profile import measure, op_kind

from common import REFERENCES, table
from run import alternate, base_models, onnx_session

ORT_KINDS = {  # ONNX Runtime's op types -> archspec's op names (`archspec.profile.op_kind`)
    "Conv": "conv", "FusedConv": "conv", "NchwcConv": "conv",
    "MaxPool": "maxpool", "NchwcMaxPool": "maxpool",
    "AveragePool": "avgpool", "GlobalAveragePool": "avgpool", "NchwcAveragePool": "avgpool",
    "NchwcGlobalAveragePool": "avgpool",
    "Concat": "concat", "Gemm": "linear", "ReorderInput": "layout", "ReorderOutput": "layout",
}
ROUNDS = 10


def archspec_ms(module: torch.fx.GraphModule, x: torch.Tensor) -> dict[str, float]:
    """Time per kind of op per forward, in ms: each fx node timed alone (as `archspec profile` does), medians."""
    with torch.inference_mode():
        timed = measure(module, x, repeat=ROUNDS, warmup=2)
    out: dict[str, float] = defaultdict(float)
    for node, seconds in timed["nodes"].items():
        kind = "layout" if node.target == "contiguous" else op_kind(node, module)  # as ONNX Runtime's reorders
        out[kind if kind in ORT_KINDS.values() else "other"] += seconds * 1e3
    return dict(out)


def ort_ms(session: Any, feed: dict[str, Any]) -> dict[str, float]:
    """Kernel time per kind of op per forward, in ms, from a session made with ONNX Runtime's profiler on."""
    for _ in range(2 + ROUNDS):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    runs = sorted(e["ts"] for e in events if e.get("name") == "model_run")
    start = runs[-ROUNDS]  # the warm-up runs come first
    out: dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= start:
            out[ORT_KINDS.get(e["args"]["op_name"], "other")] += e["dur"] / 1e3 / ROUNDS
    return dict(out)


def report(spec: str, batch: int, workdir: Path) -> str:
    ref, ours = base_models(spec, torch.device("cpu"))
    size = REFERENCES[spec][2]
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    opt = archspec.optimize(ours, batch=batch)
    plain = onnx_session(ref, x, workdir)
    feed = {plain.get_inputs()[0].name: x.numpy()}
    with torch.inference_mode():
        times = alternate({"ours": lambda: opt(x), "ort": lambda: plain.run(None, feed)}, ROUNDS, warmup=2)
    forward = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    shares = {"ours": archspec_ms(opt, x),
              "ort": ort_ms(onnx_session(ref, x, workdir, profile_prefix=str(workdir / "ort")), feed)}
    shares = {k: {kind: ms / sum(v.values()) for kind, ms in v.items()} for k, v in shares.items()}
    kinds = sorted(set(shares["ours"]) | set(shares["ort"]),
                   key=lambda k: -max(shares["ours"].get(k, 0.0), shares["ort"].get(k, 0.0)))
    rows = []
    for kind in kinds:
        a, b = (shares[w].get(kind, 0.0) for w in ("ours", "ort"))
        if max(a, b) < 0.001:
            continue
        ms_a, ms_b = a * forward["ours"], b * forward["ort"]
        rows.append([kind, f"{a:.0%}", f"{ms_a:.1f}", f"{b:.0%}", f"{ms_b:.1f}", f"{ms_a - ms_b:+.1f}"])
    rows.append(["**forward** (median, no profiler)", "", f"{forward['ours']:.1f}", "", f"{forward['ort']:.1f}",
                 f"{forward['ours'] - forward['ort']:+.1f}"])
    head = f"### {spec}, batch {batch}, CPU fp32 ({torch.get_num_threads()} threads)\n\n"
    return head + table(["kind of op", "archspec optimised share", "ms", "ONNX Runtime share", "ms",
                         "difference ms"], rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--specs", default="googlenet,inception_v3")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.specs.split(","):
            print(report(spec.strip(), args.batch, Path(tmp)), "\n", flush=True)


if __name__ == "__main__":
    main()
