"""Inference speed: the archspec module next to the reference implementation, eager and torch.compile'd.

    python benchmarks/bench_forward.py [--batch 8] [--repeat 10] [--no-compile] [--device cpu]

Each pair runs in one process on the same input with the same weights (the
reference's state_dict is loaded into the archspec module), in eval mode under
`torch.inference_mode()`; the two alternate run by run, and the table gives
the median time of each and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import archspec

from common import REFERENCES, SPECS, table


def run_once(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        model(x)
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure_pair(ref: torch.nn.Module, ours: torch.nn.Module, x: torch.Tensor, repeat: int) -> tuple[float, ...]:
    """Median seconds of each and the median per-round ratio ours/ref.

    The two run alternately, in alternating order, so that drifts of the machine
    (other load, clock changes) fall on both alike.
    """
    for _ in range(2):
        run_once(ref, x), run_once(ours, x)
    t_ref, t_ours, ratios = [], [], []
    for i in range(repeat):
        pair = (ref, ours) if i % 2 == 0 else (ours, ref)
        first, second = run_once(pair[0], x), run_once(pair[1], x)
        a, b = (first, second) if i % 2 == 0 else (second, first)
        t_ref.append(a), t_ours.append(b), ratios.append(b / a)
    return statistics.median(t_ref), statistics.median(t_ours), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--only", nargs="*", default=None, help="spec names to run")
    args = parser.parse_args()
    device = torch.device(args.device)
    start = time.perf_counter()
    rows = []
    for spec, (label, make, size) in REFERENCES.items():
        if args.only and spec not in args.only:
            continue
        torch.manual_seed(0)
        ref = make().eval().to(device)
        ours = archspec.build(SPECS / f"{spec}.yaml").eval().to(device)
        ours.load_state_dict(ref.state_dict(), strict=True)
        x = torch.randn(args.batch, 3, size, size, device=device)
        with torch.inference_mode():
            torch.testing.assert_close(ours(x), ref(x), atol=1e-3, rtol=1e-3)
        t_ref, t_ours, ratio = measure_pair(ref, ours, x, args.repeat)
        row = [spec, label, f"{t_ref * 1000:.1f}", f"{t_ours * 1000:.1f}", f"{ratio:.3f}"]
        if not args.no_compile:
            c_ref, c_ours = torch.compile(ref), torch.compile(ours)
            t_cref, t_cours, c_ratio = measure_pair(c_ref, c_ours, x, args.repeat)
            row += [f"{t_cref * 1000:.1f}", f"{t_cours * 1000:.1f}", f"{c_ratio:.3f}",
                    f"{t_ours / t_cours:.2f}×"]
        rows.append(row)
        print(" | ".join(row), flush=True)
    headers = ["spec", "reference", "reference ms", "archspec ms", "archspec / reference (median per round)"]
    if not args.no_compile:
        headers += ["compiled reference ms", "compiled archspec ms", "compiled archspec / compiled reference",
                    "compile speed-up of archspec"]
    print()
    print(table(headers, rows))
    print(f"\n{device}, batch {args.batch}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"median of {args.repeat} runs; took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
