"""Where the time goes: archspec optimised and ONNX Runtime, by kind of op, on the same network and input.

    python benchmarks/bench_ops.py                       # GoogLeNet and Inception v3, CPU fp32, batch 8
    python benchmarks/bench_ops.py --specs googlenet --batch 1

The optimised module runs under torch.profiler (self time of each aten/oneDNN call), the
reference exported to ONNX under ONNX Runtime's own profiler (each node's kernel time). Both
profilers add a little time of their own, so the plain forward of each, timed without them in
the same run, is printed beside. This is the table behind the note in benchmarks/README.md on
why the optimised module stays behind ONNX Runtime on a CPU: it says how much of the gap is the
convolutions themselves and how much pooling and concatenation.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

import archspec

from common import REFERENCES, median_seconds, table
from run import base_models, onnx_session

KINDS = {  # a profiler's op name -> the kind of work it is
    "mkldnn::_convolution_pointwise": "conv", "aten::mkldnn_convolution": "conv", "aten::convolution": "conv",
    "Conv": "conv", "FusedConv": "conv", "NchwcConv": "conv",
    "aten::max_pool2d_with_indices": "max pool", "MaxPool": "max pool", "NchwcMaxPool": "max pool",
    "aten::avg_pool2d": "avg pool", "aten::adaptive_avg_pool2d": "avg pool", "aten::mean": "avg pool",
    "AveragePool": "avg pool", "GlobalAveragePool": "avg pool", "NchwcAveragePool": "avg pool",
    "NchwcGlobalAveragePool": "avg pool",
    "aten::cat": "concat", "Concat": "concat",
    "aten::addmm": "linear", "aten::linear": "linear", "Gemm": "linear",
    "aten::copy_": "layout", "ReorderInput": "layout", "ReorderOutput": "layout",
}
"""Only leaf ops are named: an unnamed one counts as `other`."""
ROUNDS = 10


def torch_ms(module: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Self time per kind of op per forward, in ms, under torch.profiler."""
    with torch.inference_mode():
        for _ in range(2):
            module(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(ROUNDS):
                module(x)
    out: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if event.key in KINDS or not event.key.startswith(("aten::", "mkldnn::")):
            kind = KINDS.get(event.key)
        else:
            kind = "other"
        if kind is not None:
            out[kind] += event.self_cpu_time_total / 1e3 / ROUNDS
    return dict(out)


def ort_ms(ref: torch.nn.Module, x: torch.Tensor, workdir: Path) -> tuple[dict[str, float], float]:
    """Kernel time per kind of op per forward, in ms, under ONNX Runtime's profiler; and the plain forward."""
    plain = onnx_session(ref, x, workdir)
    feed = {plain.get_inputs()[0].name: x.numpy()}
    forward = median_seconds(lambda: plain.run(None, feed), ROUNDS, warmup=2) * 1e3
    session = onnx_session(ref, x, workdir, profile_prefix=str(workdir / "ort"))
    for _ in range(2 + ROUNDS):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    runs = sorted(e["ts"] for e in events if e.get("name") == "model_run")
    start = runs[-ROUNDS]  # the warm-up runs come first
    out: dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= start:
            out[KINDS.get(e["args"]["op_name"], "other")] += e["dur"] / 1e3 / ROUNDS
    return dict(out), forward


def report(spec: str, batch: int, workdir: Path) -> str:
    ref, ours = base_models(spec, torch.device("cpu"))
    size = REFERENCES[spec][2]
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    opt = archspec.optimize(ours, batch=batch)
    with torch.inference_mode():
        forward = median_seconds(lambda: opt(x), ROUNDS, warmup=2) * 1e3
    ours_ms = torch_ms(opt, x)
    theirs, ort_forward = ort_ms(ref, x, workdir)
    kinds = sorted(set(ours_ms) | set(theirs), key=lambda k: -max(ours_ms.get(k, 0.0), theirs.get(k, 0.0)))
    rows = []
    for kind in kinds:
        a, b = ours_ms.get(kind, 0.0), theirs.get(kind, 0.0)
        if max(a, b) < 0.05:
            continue
        rows.append([kind, f"{a:.1f}", f"{a / sum(ours_ms.values()):.0%}", f"{b:.1f}",
                     f"{b / sum(theirs.values()):.0%}", f"{a - b:+.1f}"])
    rows.append(["**sum of ops**", f"{sum(ours_ms.values()):.1f}", "", f"{sum(theirs.values()):.1f}", "",
                 f"{sum(ours_ms.values()) - sum(theirs.values()):+.1f}"])
    rows.append(["forward, no profiler", f"{forward:.1f}", "", f"{ort_forward:.1f}", "",
                 f"{forward - ort_forward:+.1f}"])
    head = f"### {spec}, batch {batch}, CPU fp32 ({torch.get_num_threads()} threads)\n\n"
    return head + table(["kind of op", "archspec optimised ms", "share", "ONNX Runtime ms", "share",
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
