"""bf16 / fp16 as a real cast: weights and activations in the low dtype, not autocast."""

from __future__ import annotations

import torch
from torch import fx


def cast_module(gm: fx.GraphModule, dtype: torch.dtype) -> int:
    """Store every floating parameter and buffer in `dtype`, cast the input to it once and the output back.

    Runs after the fp32 passes, so batch norms are folded in fp32 first (one rounding, not two).
    Weights a pass packed for oneDNN are packed again from the cast weights: oneDNN's convolution
    then reads and writes `dtype` and applies its fused post-ops in it. The output is returned in
    float32, so that losses, softmax and comparisons downstream see the dtype they expect; the
    cost is one small cast of the logits. Returns the number of tensors cast.
    """
    tensors = [t for t in (*gm.parameters(), *gm.buffers()) if t.is_floating_point()]
    gm.to(dtype)
    for sub in gm.modules():
        repack = getattr(sub, "_pack", None)
        if callable(repack):  # PackedConv2d: its opaque packed weight is made from the plain one
            repack()
    graph = gm.graph
    placeholder = next(n for n in graph.nodes if n.op == "placeholder")
    with graph.inserting_after(placeholder):
        cast_in = graph.call_method("to", (placeholder,), {"dtype": dtype})
    placeholder.replace_all_uses_with(cast_in, delete_user_cb=lambda user: user is not cast_in)
    output = next(n for n in graph.nodes if n.op == "output")

    def back(node: fx.Node) -> fx.Node:
        with graph.inserting_before(output):
            return graph.call_method("float", (node,))

    output.args = fx.node.map_arg(output.args, back)
    return len(tensors)
