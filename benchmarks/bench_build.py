"""Construction time: `archspec.build(spec)` next to the reference constructor, and `archspec check`.

    python benchmarks/bench_build.py [--repeat 5]

Both sides allocate and initialise every weight on the CPU; archspec also
parses, validates and infers the whole spec and generates two fx graphs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import torch

import archspec

from common import REFERENCES, SPECS, median_seconds, table


def build_rows(repeat: int) -> list[list[str]]:
    rows = []
    for spec, (label, make, _) in REFERENCES.items():
        path = SPECS / f"{spec}.yaml"
        compile_only = median_seconds(lambda p=path: archspec.compile(p), repeat)
        ours, ref, ratio = alternate(lambda p=path: archspec.build(p), make, repeat)
        rows.append([spec, f"{compile_only * 1000:.0f} ms", f"{ours * 1000:.0f} ms", f"{ref * 1000:.0f} ms",
                     label, f"{ratio:.2f}×"])
    return rows


def alternate(a: Callable[[], Any], b: Callable[[], Any], repeat: int) -> tuple[float, float, float]:
    """Median seconds of `a` and of `b`, run alternately, and the median per-round ratio a/b."""
    def once(fn: Callable[[], Any]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    once(a), once(b)
    ta, tb = [], []
    for i in range(repeat):
        if i % 2:
            tb.append(once(b)), ta.append(once(a))
        else:
            ta.append(once(a)), tb.append(once(b))
    return statistics.median(ta), statistics.median(tb), statistics.median(x / y for x, y in zip(ta, tb, strict=True))


def check_time(repeat: int) -> tuple[float, float]:
    """Median wall time of the whole `archspec check specs` process, and of `python -c pass`."""
    def run(args: list[str]) -> None:
        subprocess.run(args, check=True, capture_output=True)
    check = median_seconds(lambda: run([sys.executable, "-m", "archspec", "check", str(SPECS)]), repeat)
    bare = median_seconds(lambda: run([sys.executable, "-c", "pass"]), repeat)
    return check, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    rows = build_rows(args.repeat)
    print(table(["spec", "archspec.compile (torch-free)", "archspec.build", "reference", "reference is",
                 "build / reference (median per round)"], rows))
    check, bare = check_time(args.repeat)
    n = len(list(SPECS.glob("*.yaml")))
    print(f"\n`archspec check specs/` ({n} specs), whole process: median {check * 1000:.0f} ms "
          f"(a bare `python -c pass`: {bare * 1000:.0f} ms)")
    print(f"torch {torch.__version__}, one thread, {args.repeat} alternating runs each, medians; "
          f"took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
