"""`archspec check` scaling: time per node of generated specs of N Inception blocks.

    python benchmarks/bench_check_scaling.py [--sizes 100 1000 5000] [--repeat 3] [--process]

Each spec is a stem, N GoogLeNet Inception blocks in sequence at a constant
width (256 -> inception(64, 96, 128, 16, 32, 32) -> 256, 20 nodes a block) and a
classifier head, with an `expect:` block (params, MACs, output and block shapes,
worked out here from the formulas) that the check must pass. The time is that
of the in-process `archspec.check_file(path)`: load with locations, validate,
expand, graph, infer and the `expect:` checks. With `--process` the whole
`python -m archspec check FILE` process is timed as well (it adds Python's
start-up and the imports of pydantic, networkx and archspec, about 0.45 s).

Time per node should stay flat from 100 to 5,000 blocks. On a loaded machine
compare the µs/node of the sizes within one run, not absolute times.
Torch is not needed (and not imported).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import archspec

WIDTH = 256
BLOCK = (64, 96, 128, 16, 32, 32)
"""inception(c1, c3r, c3, c5r, c5, pool_proj): c1 + c3 + c5 + pool_proj = WIDTH, so every block maps 256 -> 256."""
SIZE = 28
CLASSES = 10
NODES_PER_BLOCK = 20  # 6 conv-bn-relu (3 nodes each), a maxpool and the concat
STEM_AND_HEAD_NODES = 3 + 3 + 1  # input, stem cbr; global_avgpool, flatten, fc

HEADER = """\
archspec: 1
name: inception_chain_{n}
doc: {n} GoogLeNet Inception blocks at a constant width of {width} channels (generated for benchmarks).
input: [3, {size}, {size}]
vars:
  num_classes: {classes}

blocks:
  cbr:
    params: [out, k, s=1, p=0]
    body:
      conv: conv($out, $k, s=$s, p=$p, bias=false)
      bn: bn(eps=0.001)
      relu: relu

  inception:
    params: [c1, c3r, c3, c5r, c5, pool_proj]
    concat:
      branch1: cbr($c1, 1)
      branch2:
        - cbr($c3r, 1)
        - cbr($c3, 3, p=1)
      branch3:
        - cbr($c5r, 1)
        - cbr($c5, 5, p=2)
      branch4:
        - maxpool(3, s=1, p=1, ceil=true)
        - cbr($pool_proj, 1)

body:
  stem: cbr({width}, 3, p=1)
"""


def _cbr(cin: int, out: int, k: int) -> tuple[int, int]:
    """Params and MACs of conv(out, k, bias=false) + bn at SIZE×SIZE (padding keeps the size)."""
    weights = cin * out * k * k
    return weights + 2 * out, weights * SIZE * SIZE


def expected_counts(n: int) -> tuple[int, int]:
    """Params and MACs of the generated network, from the layer formulas."""
    c1, c3r, c3, c5r, c5, pool_proj = BLOCK
    convs = [(WIDTH, c1, 1), (WIDTH, c3r, 1), (c3r, c3, 3), (WIDTH, c5r, 1), (c5r, c5, 5), (WIDTH, pool_proj, 1)]
    block = [_cbr(*c) for c in convs]
    stem = _cbr(3, WIDTH, 3)
    params = stem[0] + n * sum(p for p, _ in block) + WIDTH * CLASSES + CLASSES
    macs = stem[1] + n * sum(m for _, m in block) + WIDTH * CLASSES
    return params, macs


def spec_text(n: int) -> str:
    """The YAML of a network of `n` Inception blocks, with an `expect:` block it satisfies."""
    args = ", ".join(map(str, BLOCK))
    params, macs = expected_counts(n)
    lines = [HEADER.format(n=n, width=WIDTH, size=SIZE, classes=CLASSES)]
    lines += [f"  inception{i}: inception({args})\n" for i in range(n)]
    lines.append("  pool: global_avgpool\n  flatten: flatten\n  fc: linear($num_classes)\n\nexpect:\n")
    lines.append(f"  params: {params}\n  macs: {macs}\n  output: [{CLASSES}]\n  shapes:\n")
    for i in sorted({0, n // 2, n - 1}):
        lines.append(f"    inception{i}: [{WIDTH}, {SIZE}, {SIZE}]\n")
    return "".join(lines)


def write_spec(folder: Path, n: int) -> Path:
    path = folder / f"inception_chain_{n}.yaml"
    path.write_text(spec_text(n), encoding="utf-8")
    return path


def node_count(n: int) -> int:
    return n * NODES_PER_BLOCK + STEM_AND_HEAD_NODES


def _time_check(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one `check_file`."""
    start, cpu = time.perf_counter(), time.process_time()
    result = archspec.check_file(path)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if not result.ok:
        raise RuntimeError(f"{path.name} does not check:\n" + "\n".join(d.headline() for d in result.diagnostics))
    assert result.typed is not None and len(result.typed.order) == node_count(int(path.stem.rsplit("_", 1)[1]))
    return elapsed, cpu


def _time_process(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "archspec", "check", str(path)], check=True, capture_output=True)
    return time.perf_counter() - start


def _row(n: int, times: list[float], prefix: str = "") -> dict[str, Any]:
    nodes = node_count(n)
    median = statistics.median(times)
    return {"blocks": n, "nodes": nodes, f"{prefix}median_s": median, f"{prefix}min_s": min(times),
            f"{prefix}max_s": max(times), f"{prefix}us_per_node": median / nodes * 1e6}


def measure(sizes: tuple[int, ...] | list[int] = (100, 1000, 5000), repeat: int = 3,
            process: bool = False) -> list[dict[str, Any]]:
    """Time the in-process `archspec.check_file(path)` on a generated spec of each size.

    One dict per size: `blocks, nodes, median_s, min_s, max_s, us_per_node` (wall seconds
    of `check_file`, median/min/max over `repeat` runs after one warm-up run), and
    `cpu_median_s, cpu_us_per_node`, the same in CPU time of this process, which a machine
    loaded by other work disturbs less. With `process=True` the keys prefixed `process_`
    give the wall time of the whole `python -m archspec check FILE` process.
    """
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = write_spec(Path(tmp), n)
            _time_check(path)  # warm-up: imports, pydantic's and the expression parser's caches
            gc.collect()
            runs = [_time_check(path) for _ in range(repeat)]
            row = _row(n, [wall for wall, _ in runs])
            cpu = statistics.median(c for _, c in runs)
            row.update(cpu_median_s=cpu, cpu_us_per_node=cpu / row["nodes"] * 1e6)
            if process:
                row.update(_row(n, [_time_process(path) for _ in range(repeat)], "process_"))
            rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table; µs/node relative to the smallest size shows whether it stays flat."""
    process = "process_median_s" in rows[0]
    headers = ["blocks", "nodes", "check_file median", "min – max", "µs/node", "µs/node vs smallest",
               "CPU µs/node", "CPU µs/node vs smallest"]
    if process:
        headers += ["whole process median", "process min – max"]
    base, cpu_base = rows[0]["us_per_node"], rows[0]["cpu_us_per_node"]
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    for r in rows:
        cells = [f"{r['blocks']:,}", f"{r['nodes']:,}", f"{r['median_s']:.3f} s",
                 f"{r['min_s']:.3f} – {r['max_s']:.3f} s", f"{r['us_per_node']:.1f}",
                 f"{r['us_per_node'] / base:.2f}×", f"{r['cpu_us_per_node']:.1f}",
                 f"{r['cpu_us_per_node'] / cpu_base:.2f}×"]
        if process:
            cells += [f"{r['process_median_s']:.3f} s", f"{r['process_min_s']:.3f} – {r['process_max_s']:.3f} s"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000], help="numbers of blocks")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size (after one warm-up)")
    parser.add_argument("--process", action="store_true", help="also time the whole `archspec check` process")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = measure(tuple(args.sizes), args.repeat, process=args.process)
    print(table(rows))
    print(f"\nin-process `archspec.check_file`, median of {args.repeat} runs after a warm-up; "
          f"Python {sys.version.split()[0]}; took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
