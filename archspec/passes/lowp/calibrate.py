"""Calibration: the range of every tensor an fx graph computes, observed over batches of real input."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import fx

from .support import LowPrecisionError

Range = tuple[float, float]


class _Recorder(fx.Interpreter):
    """Runs the graph node by node, widening each node's [min, max] by what it computes."""

    def __init__(self, gm: fx.GraphModule, ranges: dict[str, Range]):
        super().__init__(gm)
        self.ranges = ranges

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        if isinstance(out, torch.Tensor) and out.is_floating_point() and out.numel():
            lo, hi = (float(v) for v in torch.aminmax(out.detach()))
            old = self.ranges.get(n.name)
            self.ranges[n.name] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
        return out


def observe(gm: fx.GraphModule, batches: Iterable[Any], device: torch.device) -> dict[str, Range]:
    """{node name: (min, max)} over every batch; a batch is a tensor or a (tensor, labels, ...) pair."""
    ranges: dict[str, Range] = {}
    recorder = _Recorder(gm, ranges)
    count = 0
    with torch.inference_mode():
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            if not isinstance(x, torch.Tensor):
                raise LowPrecisionError(code="calibration-needed",
                                        message=f"a calibration batch is a {type(x).__name__}, not a tensor",
                                        hint="pass an iterable of input tensors (or of (input, label) pairs)")
            recorder.run(x.to(device=device, dtype=torch.float32))
            count += 1
    if not count:
        raise LowPrecisionError(code="calibration-needed", message="no calibration batches were given",
                                hint="pass calibrate= an iterable of input batches (real data gives real accuracy)")
    return ranges


def qparams(r: Range) -> tuple[float, int]:
    """(scale, zero point) of unsigned 8-bit codes covering `r` and 0 (so zero padding is exact)."""
    lo, hi = min(r[0], 0.0), max(r[1], 0.0)
    scale = max((hi - lo) / 255.0, 1e-8)
    return scale, int(min(255, max(0, round(-lo / scale))))
