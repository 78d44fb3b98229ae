"""Torch modules and functions that some ops emit and that torch itself lacks.

Imported only by emitters (it imports torch). The Python-source backend copies
a definition from this file into the files it writes, read as text by
`archspec.ops.source.helper`, so the archspec module and a generated file run
the same code. Each definition therefore uses only `torch`, `nn` and `F`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of N×C×H×W at each position; `weight` and `bias` have shape (C,)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class DropPath(nn.Module):
    """Stochastic depth per sample: in training, zero each sample's tensor with probability `p`
    and scale the kept ones by 1 / (1 - p); in eval, the identity."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * (mask / keep if keep > 0.0 else mask)


class Permute(nn.Module):
    """`x.permute(*dims)` as a module, for a place in an `nn.Sequential`."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of `groups` equal groups: N×(g·k)×H×W viewed as g×k, transposed to k×g."""
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


class PartitionAttention(nn.Module):
    """Multi-head self-attention within groups of size×size tokens of N×H×W×C, with a learned bias per
    relative position and head; N×H×W×C out.

    `mode="block"`: the groups are the size×size windows of adjacent positions; `mode="grid"`: a size×size
    grid of positions H/size and W/size apart (so the groups are dilated windows spanning the map).
    Keys: `to_qkv` (C → 3C: queries, keys, values, each split in heads of `head_dim`), `merge` (C → C),
    `relative_position_bias_table` ((2·size − 1)² × heads) and the buffer `relative_position_index`
    (T×T, T = size²), which picks the table's row for each pair of tokens.
    """

    relative_position_index: torch.Tensor

    def __init__(self, dim: int, size: int, head_dim: int, mode: str = "block", scale: float | None = None) -> None:
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"{dim} channels do not split into heads of {head_dim}")
        if mode not in ("block", "grid"):
            raise ValueError(f"mode must be 'block' or 'grid', not {mode!r}")
        self.size, self.mode, self.heads = size, mode, dim // head_dim
        self.scale = head_dim**-0.5 if scale is None else scale
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.merge = nn.Linear(dim, dim)
        span = 2 * size - 1
        self.relative_position_bias_table = nn.Parameter(torch.empty(span * span, self.heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        row = torch.arange(size).repeat_interleave(size)  # token t = (row, col), t = row · size + col
        col = torch.arange(size).repeat(size)
        index = (row[:, None] - row[None, :] + size - 1) * span + (col[:, None] - col[None, :] + size - 1)
        self.register_buffer("relative_position_index", index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c = x.shape
        tokens = self.partition(x, self.size, self.mode).flatten(0, 1)
        q, k, v = self.to_qkv(tokens).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)
        bias = self.relative_position_bias_table[self.relative_position_index].permute(2, 0, 1)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=self.scale)
        y = self.merge(y.transpose(1, 2).flatten(2)).reshape(n, -1, self.size * self.size, c)
        return self.departition(y, h, w, self.size, self.mode)

    @staticmethod
    def partition(x: torch.Tensor, s: int, mode: str) -> torch.Tensor:
        """N×H×W×C → N×G×T×C, T = s·s: the windows of adjacent positions (`block`), or (`grid`) the groups of s×s
        positions H/s and W/s apart; groups and tokens in row-major order."""
        n, h, w, c = x.shape
        if mode == "grid":  # (n, i, a, j, b, c): position (i · h/s + a, j · w/s + b); group (a, b)
            x = x.reshape(n, s, h // s, s, w // s, c).permute(0, 2, 4, 1, 3, 5)
        else:  # (n, a, i, b, j, c): position (a · s + i, b · s + j); group (a, b)
            x = x.reshape(n, h // s, s, w // s, s, c).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(n, -1, s * s, c)

    @staticmethod
    def departition(y: torch.Tensor, h: int, w: int, s: int, mode: str) -> torch.Tensor:
        """`partition`'s inverse: N×G×T×C → N×H×W×C."""
        n, c = y.shape[0], y.shape[-1]
        y = y.reshape(n, h // s, w // s, s, s, c)
        y = y.permute(0, 3, 1, 4, 2, 5) if mode == "grid" else y.permute(0, 1, 3, 2, 4, 5)
        return y.reshape(n, h, w, c)


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """N×D×H×W → N×(H·W)×D: each position a token, in row-major order (a ViT's patch embedding)."""
    return x.flatten(2).transpose(1, 2)


def prepend_token(x: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    """N×L×D and a learned 1×1×D token → N×(L+1)×D, the token first (a ViT's class token)."""
    return torch.cat([token.expand(x.shape[0], -1, -1), x], dim=1)


class SelfAttention(nn.MultiheadAttention):
    """Multi-head self-attention over N×L×D: `nn.MultiheadAttention` (batch first) reading x as query, key
    and value and returning the attended tokens alone, so its parameters are torch's own
    (`in_proj_weight`, `in_proj_bias`, `out_proj.weight`, `out_proj.bias`)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, bias: bool = True) -> None:
        if dim % heads:
            raise ValueError(f"width {dim} does not split into {heads} heads")
        super().__init__(dim, heads, dropout=dropout, bias=bias, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x, x, x, need_weights=False)[0]


class SDPAttention(nn.Module):
    """The computation of `SelfAttention` through `F.scaled_dot_product_attention`, over the same tensors
    (`in_proj_weight`, `in_proj_bias`, `out_proj`): one fused kernel instead of explicit softmax(QKᵀ)V."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim)) if bias else None
        self.out_proj = nn.Linear(dim, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(y.transpose(1, 2).reshape(n, length, dim))
