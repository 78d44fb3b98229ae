"""An ablation reported with `archspec diff`: GoogLeNet's "5×5" branch as 3×3 (torchvision) or 5×5 (the paper).

    python examples/ablation.py

The same comparison from the command line:

    archspec diff specs/googlenet.yaml --set-b k5=5

Both sides are analysed without torch: no module is built, so an ablation over
many settings costs milliseconds each.
"""

from __future__ import annotations

import os
from pathlib import Path

import archspec
from archspec.diff import diff_table
from archspec.summary import totals

GOOGLENET = os.path.relpath(Path(__file__).resolve().parent.parent / "specs" / "googlenet.yaml")


def main() -> None:
    a = archspec.compile(GOOGLENET)             # k5=3, as torchvision builds it
    b = archspec.compile(GOOGLENET, k5=5)       # the paper's 5×5 convolutions
    table = diff_table(a, b)
    print(table.to_markdown())

    ta, tb = totals(a), totals(b)
    print(f"changed blocks: {table.meta['changed']}")
    print(f"params at inference: {ta['params_inference']:,} -> {tb['params_inference']:,} "
          f"({tb['params_inference'] - ta['params_inference']:+,})")
    print(f"MACs per image:      {ta['macs']:,} -> {tb['macs']:,} ({tb['macs'] - ta['macs']:+,})")

    # A sweep is a loop: the cost of each kernel size for the "5×5" branch.
    for k in (1, 3, 5, 7):
        typed = archspec.compile(GOOGLENET, k5=k)
        params, macs = typed.total("params", inference=True), typed.total("macs", inference=True)
        print(f"k5={k}: {params:>10,} params  {macs:>14,} MACs")


if __name__ == "__main__":
    main()
