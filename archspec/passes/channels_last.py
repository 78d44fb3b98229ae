"""Run 4-D convolutions in channels-last (NHWC) memory layout."""

from __future__ import annotations

import torch
from torch import fx, nn

from .common import module


def channels_last(gm: fx.GraphModule) -> int:
    """Store conv weights channels-last and convert the input once, after the placeholder.

    Exact: only the memory layout changes, never a value. oneDNN (CPU) and cuDNN (GPU) run NHWC
    convolutions without the reorders an NCHW graph pays at every conv, and every op in between
    (pooling, ReLU, concat along channels) keeps the layout it is given.
    Returns the number of conv weights converted.
    """
    convs = [m for n in gm.graph.nodes if isinstance(m := module(gm, n), nn.Conv2d)]
    if not convs:
        return 0
    for conv in convs:
        conv.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    placeholder = next(n for n in gm.graph.nodes if n.op == "placeholder")
    with gm.graph.inserting_after(placeholder):
        converted = gm.graph.call_method("contiguous", (placeholder,), {"memory_format": torch.channels_last})
    placeholder.replace_all_uses_with(converted, delete_user_cb=lambda user: user is not converted)
    return len(convs)
