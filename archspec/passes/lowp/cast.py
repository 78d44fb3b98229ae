"""bf16 / fp16 as a real cast: weights and activations in the low dtype, not autocast."""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from ..common import INPUT_META, device_of


def cast_module(gm: fx.GraphModule, dtype: torch.dtype) -> int:
    """Store every floating parameter and buffer in `dtype`, cast the input to it once and the output back.

    Runs after the fp32 passes, so batch norms are folded in fp32 first (one rounding, not two).
    Weights a pass packed for oneDNN are packed again from the cast weights: oneDNN's convolution
    then reads and writes `dtype` and applies its fused post-ops in it. The output is returned in
    float32, so that losses, softmax and comparisons downstream see the dtype they expect; the
    cost is one small cast of the logits. An op torch cannot run in `dtype` on this device (the
    CPU's local response norm in bf16) is found by running the graph once, and stays in float32
    between two casts. Returns the number of tensors cast.
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
    gm.recompile()
    for node in _unsupported(gm, dtype):
        _run_in_float32(gm, node, dtype)
    return len(tensors)


class _Probe(fx.Interpreter):
    """Runs the cast graph once; a node torch refuses in the low dtype is noted and run in float32."""

    def __init__(self, gm: fx.GraphModule, dtype: torch.dtype):
        super().__init__(gm)
        self.dtype = dtype
        self.refused: list[fx.Node] = []

    def run_node(self, n: fx.Node) -> Any:
        try:
            return super().run_node(n)
        except (NotImplementedError, RuntimeError):
            if n.op not in ("call_module", "call_function", "call_method"):
                raise
            self.refused.append(n)
            if n.op == "call_module":
                _to_float32(self.module.get_submodule(str(n.target)))
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            out = getattr(self, n.op)(n.target, *_float((args, kwargs)))
            return out.to(self.dtype) if isinstance(out, torch.Tensor) and out.is_floating_point() else out


def _to_float32(sub: torch.nn.Module) -> None:
    sub.float()
    repack = getattr(sub, "_pack", None)
    if callable(repack):  # a packed conv's opaque weight follows its plain one
        repack()


def _float(value: Any) -> Any:
    return fx.node.map_aggregate(value, lambda v: v.float() if isinstance(v, torch.Tensor)
                                 and v.is_floating_point() else v)


def _unsupported(gm: fx.GraphModule, dtype: torch.dtype) -> list[fx.Node]:
    probe = _Probe(gm, dtype)
    example = torch.zeros((1, *gm.meta[INPUT_META][1:]), device=device_of(gm))
    with torch.inference_mode():
        probe.run(example)
    return probe.refused


def _run_in_float32(gm: fx.GraphModule, node: fx.Node, dtype: torch.dtype) -> None:
    """Read `node`'s tensor inputs as float32 and give its readers `dtype` again (its module is float32 already)."""
    graph = gm.graph

    def up(arg: fx.Node) -> fx.Node:
        with graph.inserting_before(node):
            return graph.call_method("float", (arg,))

    node.args = fx.node.map_arg(node.args, up)
    node.kwargs = fx.node.map_arg(node.kwargs, up)
    with graph.inserting_after(node):
        down = graph.call_method("to", (node,), {"dtype": dtype})
    node.replace_all_uses_with(down, delete_user_cb=lambda user: user is not down)
