"""Torch code of Swin's ops: shifted-window self-attention and the 2×2 patch gather of patch merging.

Imported only by emitters (it imports torch). Like archspec/ops/modules.py, the
Python-source backend copies these definitions into the files it writes (read as
text by `archspec.ops.source.helper`), so each uses only `math`, `torch`, `nn` and
`F`, and each is self-contained: a helper is written out only where the generated
code calls it by name.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def patch_gather(x: torch.Tensor) -> torch.Tensor:
    """N×H×W×C → N×⌈H/2⌉×⌈W/2⌉×4C: each 2×2 patch's four positions side by side on the channels, in the order
    (0, 0), (1, 0), (0, 1), (1, 1) (row, column); an odd H or W is padded with zeros at the end first."""
    h, w = x.shape[1], x.shape[2]
    x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
    return torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)


class ShiftedWindowAttention(nn.Module):
    """Multi-head self-attention within non-overlapping windows of an N×H×W×C tensor (Swin Transformer).

    The map is padded with zeros at the bottom and right to a multiple of the window, cyclically
    shifted up and left by `shift` (a shift is dropped along an axis where the window covers the
    whole padded map), cut into windows, and each window attends to itself with a relative position
    bias; positions that the shift brought together from opposite edges are kept apart by a mask.
    `v2` is Swin V2's form: cosine attention with a learned per-head temperature (`logit_scale`),
    the bias computed by a small MLP (`cpb_mlp`) from log-spaced relative coordinates, and the key
    part of the qkv bias held at zero. Attention runs through `F.scaled_dot_product_attention`,
    with the bias and the mask as its additive `attn_mask`.
    """

    def __init__(self, dim: int, heads: int, window: int | tuple[int, int], shift: int | tuple[int, int] = 0,
                 v2: bool = False, qkv_bias: bool = True, proj_bias: bool = True) -> None:
        super().__init__()
        wh, ww = (window, window) if isinstance(window, int) else tuple(window)
        sh, sw = (shift, shift) if isinstance(shift, int) else tuple(shift)
        if dim % heads or sh >= wh or sw >= ww:
            raise ValueError(f"window attention needs dim ({dim}) divisible by heads ({heads}) and a shift "
                             f"({sh}, {sw}) smaller than the window ({wh}, {ww})")
        self.heads, self.window, self.shift, self.v2 = heads, (wh, ww), (sh, sw), v2
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        rows, cols = (t.flatten() for t in torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij"))
        dy = rows[:, None] - rows[None, :] + wh - 1
        dx = cols[:, None] - cols[None, :] + ww - 1
        self.register_buffer("relative_position_index", (dy * (2 * ww - 1) + dx).flatten())
        table = (2 * wh - 1) * (2 * ww - 1)
        if not v2:
            self.relative_position_bias_table = nn.Parameter(torch.zeros(table, heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
            return
        self.logit_scale = nn.Parameter(torch.full((heads, 1, 1), math.log(10.0)))
        self.cpb_mlp = nn.Sequential(nn.Linear(2, 512), nn.ReLU(inplace=True), nn.Linear(512, heads, bias=False))
        offsets = [torch.arange(1 - n, n, dtype=torch.float32) / max(n - 1, 1) * 8 for n in (wh, ww)]
        coords = torch.stack(torch.meshgrid(*offsets, indexing="ij"), dim=-1).unsqueeze(0)
        self.register_buffer("relative_coords_table", torch.sign(coords) * torch.log2(coords.abs() + 1.0) / 3.0)
        if qkv_bias:
            with torch.no_grad():
                self.qkv.bias[dim:2 * dim].zero_()

    def position_bias(self) -> torch.Tensor:
        """The heads × n × n additive bias between the n positions of a window."""
        n = self.window[0] * self.window[1]
        if self.v2:
            table = self.cpb_mlp(self.relative_coords_table).view(-1, self.heads)
        else:
            table = self.relative_position_bias_table
        bias = table[self.relative_position_index].view(n, n, self.heads).permute(2, 0, 1)
        return 16 * torch.sigmoid(bias) if self.v2 else bias

    def shift_mask(self, h: int, w: int, shift: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
        """windows × 1 × n × n: 0 between positions of the same region of the shifted h×w map, -100 across."""
        wh, ww = self.window

        def regions(size: int, window: int, s: int) -> torch.Tensor:
            i = torch.arange(size, device=like.device)
            return (i >= size - window).long() + (i >= size - s).long()

        label = regions(h, wh, shift[0])[:, None] * 3 + regions(w, ww, shift[1])[None, :]
        label = label.view(h // wh, wh, w // ww, ww).transpose(1, 2).reshape(-1, wh * ww)
        differ = label[:, None, :] != label[:, :, None]
        return torch.zeros(differ.shape, dtype=like.dtype, device=like.device).masked_fill(differ, -100.0)[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        (wh, ww), heads = self.window, self.heads
        x = F.pad(x, (0, 0, 0, (-w) % ww, 0, (-h) % wh))
        hp, wp = x.shape[1], x.shape[2]
        shift = (self.shift[0] if wh < hp else 0, self.shift[1] if ww < wp else 0)
        if any(shift):
            x = torch.roll(x, (-shift[0], -shift[1]), (1, 2))
        n, windows = wh * ww, (hp // wh) * (wp // ww)
        x = x.reshape(b, hp // wh, wh, wp // ww, ww, c).transpose(2, 3).reshape(-1, n, c)
        qkv_bias: torch.Tensor | None = self.qkv.bias
        if self.v2 and qkv_bias is not None:
            qkv_bias = torch.cat([qkv_bias[:c], torch.zeros_like(qkv_bias[c:2 * c]), qkv_bias[2 * c:]])
        qkv = F.linear(x, self.qkv.weight, qkv_bias).view(-1, n, 3, heads, c // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (N · windows) × heads × n × C/heads
        scale: float | None = None
        if self.v2:
            q = F.normalize(q, dim=-1) * torch.clamp(self.logit_scale, max=math.log(100.0)).exp()
            k, scale = F.normalize(k, dim=-1), 1.0
        mask = self.position_bias().to(x.dtype)
        if any(shift):
            mask = (mask + self.shift_mask(hp, wp, shift, x)).expand(b, windows, heads, n, n).reshape(-1, heads, n, n)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
        # an explicit contiguous copy: the layout of the attention's output differs between torch's kernels, and
        # torch.export, tracing one and decomposing to another, would otherwise reshape it as a view
        x = self.proj(x.transpose(1, 2).clone(memory_format=torch.contiguous_format).view(-1, n, c))
        x = x.view(b, hp // wh, wp // ww, wh, ww, c).transpose(2, 3).reshape(b, hp, wp, c)
        if any(shift):
            x = torch.roll(x, shift, (1, 2))
        return x[:, :h, :w].contiguous()
