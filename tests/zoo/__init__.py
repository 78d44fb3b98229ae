"""Model-zoo tests: specs of published networks checked against their reference implementations.

Shared helpers: the path of `specs/`, BatchNorm calibration (so that eval-mode
comparisons run on activations of sensible size) and a MAC count by torch's
own FLOP counter, to cross-check archspec's torch-free counts.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

SPECS = Path(__file__).resolve().parents[2] / "specs"


def calibrate_bn(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Set every BatchNorm's running statistics to those of batch `x`; return the model in eval mode.

    A freshly initialised network has running mean 0 and variance 1, so its
    eval-mode activations grow layer after layer (to ~1e13 for Inception v3)
    and a tolerance of 1e-5 would mean nothing. With the statistics of a real
    batch, the outputs are of order 1 and the BN arithmetic is exercised with
    values other than the identity.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: after one batch, exactly its statistics
    model.train()
    with torch.no_grad():
        model(x)
    for m, momentum in zip(bns, saved, strict=True):
        m.momentum = momentum
    return model.eval()


def torch_macs(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Run `model(x)` without gradients; return its output and its multiply-accumulates per image.

    The MACs come from torch's own FLOP counter (2 FLOPs per MAC), which counts
    convolutions and matrix products without their biases, as archspec does.
    """
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(x)
    flops = counter.get_total_flops()
    assert flops % (2 * x.shape[0]) == 0
    return out, flops // (2 * x.shape[0])
