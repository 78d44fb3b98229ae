"""Inception-v4 on 28×28 MNIST-sized images: refused, the smallest input, and two ways out.

    python examples/mnist_inception_v4.py

Inception-v4's stem downsamples 8× before its first Inception module and its two
reductions another 4×, so a 28×28 image shrinks to nothing. archspec says so
before any tensor exists, and says how large the input must be. The ways out:

1. resize the images to the smallest input the network accepts (75×75), or
2. give the network a smaller stem: an edited copy of the spec that keeps the
   grid in its first layers, so that 28×28 goes through.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

import archspec

V4 = Path(os.path.relpath(Path(__file__).resolve().parent.parent / "specs" / "inception_v4.yaml"))
MNIST = {"input": [1, 28, 28], "num_classes": 10}    # one channel, ten digits


def refused() -> None:
    print("--- Inception-v4 at 1×28×28")
    try:
        archspec.compile(V4, **MNIST)
    except archspec.SpecError as err:
        print(err.render())


def smallest_input() -> tuple[int, int]:
    typed = archspec.compile(V4, num_classes=10)          # as written: 3×299×299
    smallest = archspec.min_input(typed.graph, (1, 28, 28))
    assert smallest is not None
    print(f"--- smallest input of {typed.net.name}: {smallest[0]}×{smallest[1]}")
    return smallest


def resize(size: tuple[int, int]) -> None:
    """Way out 1: upsample the 28×28 digits to the smallest input."""
    import torch
    import torch.nn.functional as F

    model = archspec.build(V4, input=[1, *size], num_classes=10).eval()
    digits = torch.rand(2, 1, 28, 28)                      # a batch of MNIST-sized images
    resized = F.interpolate(digits, size=size, mode="bilinear", align_corners=False)
    with torch.no_grad():
        logits = model(resized)
    print(f"--- way out 1, resize: 2×1×28×28 -> 2×1×{size[0]}×{size[1]} -> logits {tuple(logits.shape)}")


def small_stem_spec() -> str:
    """Way out 2: the same network with a stem that keeps the 28×28 grid in its first layers."""
    doc = yaml.safe_load(V4.read_text())
    doc["name"] = "inception_v4_mnist"
    doc["input"] = MNIST["input"]
    doc["vars"]["num_classes"] = MNIST["num_classes"]
    doc["body"]["features"][0] = "cbr(32, 3, p=1)"      # was cbr(32, 3, s=2): 3×3/2 → 3×3/1, padded
    doc["blocks"]["mixed_3a"]["concat"] = {              # was 3×3/2 max pool ‖ 3×3/2 conv
        "maxpool": "maxpool(3, s=1, p=1)",
        "conv": "cbr(96, 3, p=1)",
    }
    del doc["expect"]                                    # the published numbers no longer apply
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def small_stem() -> None:
    import torch

    typed = archspec.compile(archspec.loads(small_stem_spec(), "inception_v4_mnist.yaml"))
    smallest = archspec.min_input(typed.graph)
    assert smallest is not None
    print(f"--- way out 2, a smaller stem: {typed.total('params'):,} params, {typed.total('macs'):,} MACs, "
          f"smallest input {smallest[0]}×{smallest[1]}")
    for name in ("features/0", "features/5", "features/10", "features/18", "features/21"):
        print(f"      {name:<12}{'×'.join(map(str, typed.shape(typed.net.output_of(name))))}")
    model = archspec.build(typed).eval()
    with torch.no_grad():
        logits = model(torch.rand(2, 1, 28, 28))
    print(f"      2×1×28×28 -> logits {tuple(logits.shape)}")


def main() -> None:
    refused()
    resize(smallest_input())
    small_stem()


if __name__ == "__main__":
    main()
