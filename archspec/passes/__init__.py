"""Whole-graph inference passes over an emitted module: `optimize(module, passes=None)`.

Each pass is one small function `pass(gm) -> int` that rewrites a `torch.fx.GraphModule` in place and
returns how many rewrites it made. `PASSES` lists them in the order they run; docs/optimize.md says
what each changes and why its outputs are the same.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from .attention import sdpa_attention
from .channels_last import channels_last
from .cleanup import remove_dropout
from .common import INPUT_META, device_of
from .fold_bn import fold_bn
from .fold_scale import fold_scale
from .fuse_conv import PackedConv2d, fuse_conv
from .lowp import FLOAT_ONLY_PASSES, check_request, lower_precision
from .merge_siblings import merge_siblings
from .separable_maxpool import SeparableMaxPool2d, separable_maxpool

__all__ = ["PASSES", "DEFAULT_PASSES", "OptimizedModule", "PackedConv2d", "Pass", "SeparableMaxPool2d",
           "default_passes", "optimize", "pass_names"]


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[fx.GraphModule], int]
    summary: str


PASSES: tuple[Pass, ...] = (
    Pass("remove_dropout", remove_dropout, "dropout and identities removed"),
    Pass("sdpa_attention", sdpa_attention, "self-attention through F.scaled_dot_product_attention"),
    Pass("fold_bn", fold_bn, "batch norms folded into the conv or linear before them"),
    Pass("fold_scale", fold_scale, "constant scales folded into the conv before them"),
    Pass("merge_siblings", merge_siblings, "sibling convs merged into one wider conv"),
    Pass("channels_last", channels_last, "conv weights stored channels-last, input converted once"),
    Pass("fuse_conv", fuse_conv, "convs packed for oneDNN, activations and residual adds fused in (CPU)"),
    Pass("separable_maxpool", separable_maxpool, "max pools as two 1-D running maxima, no indices (CPU)"),
)
"""Every pass, in the order `optimize` runs them."""

DEFAULT_PASSES: dict[str, tuple[str, ...]] = {
    "cpu": ("remove_dropout", "sdpa_attention", "fold_bn", "fold_scale", "channels_last", "fuse_conv",
            "separable_maxpool"),
    "cuda": ("remove_dropout", "sdpa_attention", "fold_bn", "fold_scale", "merge_siblings", "channels_last"),
}
"""The passes `optimize` runs when none are named, by device type (what each pays is measured in
benchmarks/RESULTS.md: merging sibling convs pays on a GPU, where it saves kernel launches, and
costs a little on the CPU, where the split outputs are strided views the next conv must copy)."""


CPU_ONLY = ("fuse_conv", "separable_maxpool")


def default_passes(device: torch.device | str) -> tuple[str, ...]:
    """The passes worth running on `device` (on other devices: every pass but the CPU-only ones)."""
    kind = torch.device(device).type
    return DEFAULT_PASSES.get(kind, tuple(p for p in pass_names() if p not in CPU_ONLY))


def pass_names() -> list[str]:
    return [p.name for p in PASSES]


class OptimizedModule(fx.GraphModule):
    """An inference-only module made by `optimize`: same outputs as the module it came from, in eval mode.

    `passes` maps each pass that ran to the number of rewrites it made. Batch norms are folded away,
    so it cannot be trained: `.train()` raises.
    """

    def train(self, mode: bool = True) -> OptimizedModule:
        if mode:
            raise RuntimeError("an optimised module is for inference only (its batch norms are folded); "
                               "train the module archspec.build returned, then optimise it again")
        return super().train(False)


def optimize(module: nn.Module, passes: Iterable[str] | None = None, *, batch: int = 8, dtype: str = "fp32",
             calibrate: Iterable[Any] | None = None) -> OptimizedModule:
    """An inference module with the same outputs as `module` in eval mode (max relative difference ≤ 1e-4).

    `module` is an `ArchModule` (from `archspec.build`, weights loaded or not); it is not changed.
    `passes` names the passes to run (default: `default_passes` of the module's device), always in
    `PASSES` order. `batch` is
    the batch size weights are packed for where a pass packs them; any batch size runs. Optimise on the
    device the module will run on: packed CPU convs do not move to a GPU.
    `dtype` "bf16"/"fp16" casts weights and activations (output float32), "int8" quantises from the
    `calibrate` batches (an iterable of input tensors); docs/optimize.md gives the accuracy each costs.
    Raises `archspec.passes.lowp.LowPrecisionError` for a dtype the device cannot run.
    """
    gm = _inference_copy(module)
    check_request(dtype, device_of(gm), calibrate)
    chosen = _chosen(passes, device_of(gm)) - set(FLOAT_ONLY_PASSES.get(dtype, ()))
    gm.meta[INPUT_META] = (batch, *gm.__dict__["input_shape"])
    done: dict[str, int] = {}
    with torch.no_grad():
        for p in PASSES:
            if p.name in chosen:
                done[p.name] = p.run(gm)
        done.update(lower_precision(gm, dtype, calibrate))
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.graph.lint()
    gm.recompile()
    object.__setattr__(gm, "passes", done)
    object.__setattr__(gm, "dtype", dtype)
    return gm


def _chosen(passes: Iterable[str] | None, device: torch.device) -> set[str]:
    if passes is None:
        return set(default_passes(device))
    chosen = set(passes)
    unknown = sorted(chosen - set(pass_names()))
    if unknown:
        raise ValueError(f"unknown pass{'es' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                         f"the passes are {', '.join(pass_names())}")
    return chosen


def _inference_copy(module: nn.Module) -> OptimizedModule:
    """A copy of `module`'s inference graph over deep copies of its submodules, in eval mode."""
    graph: Any = getattr(module, "graph", None)
    if not isinstance(graph, fx.Graph) or not hasattr(module, "typed"):
        raise TypeError(f"optimize takes the module archspec.build returns, not {type(module).__name__}")
    tree = nn.ModuleDict(dict(module.named_children()))
    for name, param in module.named_parameters(recurse=False):  # a top-level node's tensor (`layer_scale`)
        tree.register_parameter(name, param)
    root = copy.deepcopy(tree).eval()
    gm = OptimizedModule(root, copy.deepcopy(graph), class_name=f"{type(module).__name__}Optimized")
    typed: Any = module.typed
    object.__setattr__(gm, "spec_name", typed.net.name)
    object.__setattr__(gm, "input_shape", tuple(typed.input_shape))
    return gm.eval()
