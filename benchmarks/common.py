"""Shared helpers for the benchmarks: reference constructors and a median timer."""

from __future__ import annotations

import statistics
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

SPECS = Path(__file__).resolve().parent.parent / "specs"


def _torchvision(name: str, **kw: Any) -> Callable[[], torch.nn.Module]:
    def make() -> torch.nn.Module:
        import torchvision

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return getattr(torchvision.models, name)(weights=None, **kw)
    return make


def _timm(name: str) -> Callable[[], torch.nn.Module]:
    def make() -> torch.nn.Module:
        import timm

        return timm.create_model(name, pretrained=False)
    return make


# spec name -> (reference label, constructor, input size)
REFERENCES: dict[str, tuple[str, Callable[[], torch.nn.Module], int]] = {
    "googlenet": ("torchvision googlenet", _torchvision("googlenet", aux_logits=True, init_weights=True,
                                                         transform_input=False), 224),
    "inception_v3": ("torchvision inception_v3", _torchvision("inception_v3", aux_logits=True, init_weights=True,
                                                               transform_input=False), 299),
    "inception_v4": ("timm inception_v4", _timm("inception_v4"), 299),
    "inception_resnet_v2": ("timm inception_resnet_v2", _timm("inception_resnet_v2"), 299),
    "resnet50": ("torchvision resnet50", _torchvision("resnet50"), 224),
    "mobilenet_v2": ("torchvision mobilenet_v2", _torchvision("mobilenet_v2"), 224),
    "efficientnet_b0": ("torchvision efficientnet_b0", _torchvision("efficientnet_b0"), 224),
    "vit_b_16": ("torchvision vit_b_16", _torchvision("vit_b_16"), 224),
    "swin_t": ("torchvision swin_t", _torchvision("swin_t"), 224),
}


def median_seconds(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> float:
    """Median wall time of `fn()` over `repeat` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
