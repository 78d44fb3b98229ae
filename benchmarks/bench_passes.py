"""What each pass pays: the optimised module with growing sets of passes, side by side in one process.

    python benchmarks/bench_passes.py                      # GoogLeNet and Inception v3, CPU, batch 8
    python benchmarks/bench_passes.py --specs resnet50,mobilenet_v2,efficientnet_b0
    python benchmarks/bench_passes.py --device cuda --batch 64

Every variant runs once per round, in rotating order, on the same input; the table gives the
median time and the median of the per-round ratios against the unoptimised module.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any
from unittest import mock

import torch

import archspec
from archspec.passes import optimize

from common import SPECS, table

FOLD = ["remove_dropout", "fold_bn", "fold_scale"]
VARIANTS: dict[str, list[str] | None] = {
    "unoptimised": None,
    "fold": FOLD,
    "fold + channels_last": FOLD + ["channels_last"],
    "fold + merge_siblings + channels_last": FOLD + ["merge_siblings", "channels_last"],
    "fold + fuse_conv (NCHW)": FOLD + ["fuse_conv"],
    "fold + channels_last + fuse_conv, packing only (no post-ops)": FOLD + ["channels_last", "fuse_conv"],
    "fold + channels_last + fuse_conv": FOLD + ["channels_last", "fuse_conv"],
    "fold + channels_last + fuse_conv + separable_maxpool": FOLD + ["channels_last", "fuse_conv",
                                                                        "separable_maxpool"],
    "every pass": FOLD + ["merge_siblings", "channels_last", "fuse_conv", "separable_maxpool"],
}


def variant(name: str, module: torch.nn.Module, passes: list[str], batch: int) -> torch.nn.Module:
    """The module optimised with `passes`; for the "packing only" variant, `fuse_conv` finds no post-ops,
    so that what the fused activations and residual adds pay is measured apart from the packing."""
    if "packing only" not in name:
        return optimize(module, passes, batch=batch)
    with mock.patch("archspec.passes.fuse_conv.post_op", lambda gm, node: None), \
            mock.patch("archspec.passes.fuse_conv.residual_add", lambda node, conv: None):
        return optimize(module, passes, batch=batch)


def rounds(models: dict[str, Any], x: torch.Tensor, repeat: int, warmup: int) -> dict[str, list[float]]:
    names, times = list(models), {n: [] for n in models}  # type: dict[str, list[float]]
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for r in range(warmup + repeat):
            for name in names[r % len(names):] + names[:r % len(names)]:
                sync()
                start = time.perf_counter()
                models[name](x)
                sync()
                if r >= warmup:
                    times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--specs", default="googlenet,inception_v3")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=9)
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args()
    for spec in args.specs.split(","):
        module = archspec.build(SPECS / f"{spec}.yaml", device=args.device).eval()
        models = {name: module if passes is None else variant(name, module, passes, args.batch)
                  for name, passes in VARIANTS.items()}
        x = torch.randn(args.batch, *module.typed.input_shape, device=args.device)
        times = rounds(models, x, args.repeat, args.warmup)
        base = times["unoptimised"]
        rows = [[name, f"{statistics.median(t) * 1000:.1f}",
                 f"{statistics.median(b / s for b, s in zip(base, t, strict=True)):.2f}×"]
                for name, t in times.items()]
        print(f"\n{spec}, {args.device}, batch {args.batch}, median of {args.repeat}:\n")
        print(table(["passes", "ms", "× unoptimised"], rows))


if __name__ == "__main__":
    main()
