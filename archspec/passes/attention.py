"""Self-attention through `F.scaled_dot_product_attention` (the `self_attention` op's fused form)."""

from __future__ import annotations

from torch import fx

from ..ops.modules import SDPAttention, SelfAttention
from .common import module, set_module


def sdpa_attention(gm: fx.GraphModule) -> int:
    """Each `SelfAttention` (torch's `nn.MultiheadAttention` over x, x, x) becomes an `SDPAttention` holding
    the same tensors, which projects Q, K and V with one matmul and calls `F.scaled_dot_product_attention`.

    The same arithmetic (softmax(QKᵀ/√d)·V per head, then the output projection), without
    `nn.MultiheadAttention`'s argument checks and its fallback paths; rounding only differs.
    """
    swapped = 0
    for node in gm.graph.nodes:
        old = module(gm, node)
        if type(old) is not SelfAttention or old.bias_k is not None or old.add_zero_attn:
            continue
        dim = old.embed_dim
        new = SDPAttention(dim, old.num_heads, dropout=old.dropout, bias=old.in_proj_bias is not None)
        new.in_proj_weight, new.in_proj_bias, new.out_proj = old.in_proj_weight, old.in_proj_bias, old.out_proj
        set_module(gm, str(node.target), new.train(old.training))
        swapped += 1
    return swapped
