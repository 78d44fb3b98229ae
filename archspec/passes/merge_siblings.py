"""Merge sibling convolutions that read one tensor into one wider convolution."""

from __future__ import annotations

import itertools
import operator
from collections import defaultdict

import torch
from torch import fx, nn

from .common import absorb, add_module, is_relu, module, sole_user


def merge_siblings(gm: fx.GraphModule) -> int:
    """Convs that read the same tensor with the same kernel, stride, padding and dilation become one conv
    whose output is split by channels (GoogLeNet's three 1×1 convs per Inception block: 57 convs → 39).

    Exact: each output channel is computed from the same weights and the same input as before. When every
    sibling feeds a ReLU alone, the ReLU is applied once to the merged output, before the split.
    Returns the number of convs removed.
    """
    removed = 0
    for group in _sibling_groups(gm):
        _merge(gm, group)
        removed += len(group) - 1
    return removed


def _signature(conv: nn.Conv2d) -> tuple:
    return (conv.in_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.padding_mode,
            conv.bias is not None, conv.weight.dtype, conv.weight.device)


def _sibling_groups(gm: fx.GraphModule) -> list[list[fx.Node]]:
    groups: dict[tuple, list[fx.Node]] = defaultdict(list)
    for node in gm.graph.nodes:
        conv = module(gm, node)
        if type(conv) is nn.Conv2d and conv.groups == 1 and isinstance(node.args[0], fx.Node):
            groups[(node.args[0], _signature(conv))].append(node)
    return [nodes for nodes in groups.values() if len(nodes) > 1]


def _merge(gm: fx.GraphModule, nodes: list[fx.Node]) -> None:
    convs: list[nn.Conv2d] = [module(gm, n) for n in nodes]  # type: ignore[misc]
    first = convs[0]
    merged = nn.Conv2d(first.in_channels, sum(c.out_channels for c in convs), first.kernel_size,  # type: ignore[arg-type]
                       stride=first.stride, padding=first.padding, dilation=first.dilation,  # type: ignore[arg-type]
                       bias=first.bias is not None, padding_mode=first.padding_mode,
                       device=first.weight.device, dtype=first.weight.dtype)
    with torch.no_grad():
        merged.weight.copy_(torch.cat([c.weight for c in convs]))
        if merged.bias is not None:
            merged.bias.copy_(torch.cat([c.bias for c in convs]))  # type: ignore[misc]
    graph = gm.graph
    relus = [sole_user(n) for n in nodes]
    fuse_relu = all(r is not None and is_relu(gm, r) for r in relus)
    target = add_module(gm, f"{_common_prefix([str(n.target) for n in nodes])}merged", merged)
    with graph.inserting_before(nodes[0]):  # before every sibling's reader, after their shared input
        conv = out = graph.call_module(target, (nodes[0].args[0],))
        absorb(conv, *nodes, *(relus if fuse_relu else []))  # type: ignore[arg-type]
        if fuse_relu:
            out = graph.call_function(torch.relu, (out,))
        parts = graph.call_function(torch.split, (out, [c.out_channels for c in convs]), {"dim": 1})
        pieces = [graph.call_function(operator.getitem, (parts, i)) for i in range(len(nodes))]
    for helper in {out, parts, *pieces} - {conv}:  # their time belongs to the siblings' blocks too
        absorb(helper, conv)
    ends = relus if fuse_relu else nodes
    for end, piece in zip(ends, pieces, strict=True):
        end.replace_all_uses_with(piece)  # type: ignore[union-attr]
    for node in itertools.chain(relus if fuse_relu else [], nodes):
        graph.erase_node(node)  # type: ignore[arg-type]


def _common_prefix(targets: list[str]) -> str:
    """The module path the siblings share, up to a '.' (e.g. 'inception3a.')."""
    parts = [t.split(".") for t in targets]
    shared = []
    for level in zip(*parts, strict=False):
        if len(set(level)) > 1:
            break
        shared.append(level[0])
    return ".".join(shared) + "." if shared else ""
