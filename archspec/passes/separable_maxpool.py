"""On CPU: max pooling as two 1-D running maxima over strided views, with no indices written.

torch's CPU max pool always computes the index of every maximum (for a backward pass inference never
runs), comparing and blending an int64 index vector beside each float vector: in the optimised
GoogLeNet its 13 pools took ~17 % of the time. A k×k max is a k-wide max along the width followed
by one along the height, and each of those is k - 1 elementwise `torch.maximum`s of strided views
of the input, vectorised over the channels that lie contiguous in a channels-last tensor. The pass
takes stride-1 pools only (GoogLeNet's nine inside its Inception blocks), where that measured faster.
"""

from __future__ import annotations

import math

import torch
from torch import fx, nn

from .common import device_of, set_module


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def pooled_size(n: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    """torch's output length of a max pool (dilation 1), ceil mode's rule included."""
    span = n + 2 * p - k
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:  # the last window would start in the right padding
        out -= 1
    return out


def _taps(n: int, k: int, s: int, p: int, out: int) -> list[tuple[int, int, int]]:
    """For each window offset t: the outputs [lo, hi) whose t-th element lies inside the input, and its first index."""
    taps = []
    for t in range(k):
        lo, hi = max(0, math.ceil((p - t) / s)), min(out, (n - 1 + p - t) // s + 1)
        if hi > lo:
            taps.append((lo, hi, lo * s - p + t))
    return taps


def _along(x: torch.Tensor, dim: int, index: slice) -> torch.Tensor:
    return x[(slice(None),) * dim + (index,)]


def running_max(x: torch.Tensor, dim: int, k: int, s: int, p: int, ceil_mode: bool) -> torch.Tensor:
    """The 1-D max pool of `x` along `dim` (implicit -inf padding), in `x`'s memory format."""
    n = x.shape[dim]
    out = pooled_size(n, k, s, p, ceil_mode)
    taps = _taps(n, k, s, p, out)

    def view(lo: int, hi: int, start: int) -> torch.Tensor:
        return _along(x, dim, slice(start, start + (hi - lo - 1) * s + 1, s))

    shape = list(x.shape)
    shape[dim] = out
    full = next((tap for tap in taps if tap[:2] == (0, out)), None)  # a window offset inside every window
    rest = sorted((tap for tap in taps if tap is not full), key=lambda tap: tap[0] - tap[1])
    if full is None:  # uncommon (windows partly outside on both ends): start from -inf
        lowest = -math.inf if x.is_floating_point() else torch.iinfo(x.dtype).min  # int8's uint8 codes too
        y = torch.full(shape, lowest, dtype=x.dtype, device=x.device).contiguous(memory_format=_format(x))
        pending = rest
    elif not rest:
        return view(*full).clone(memory_format=torch.preserve_format)
    else:
        y = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=_format(x))
        lo, hi, start = rest[0]
        first = view(*full)
        torch.maximum(_along(first, dim, slice(lo, hi)), view(lo, hi, start), out=_along(y, dim, slice(lo, hi)))
        _along(y, dim, slice(0, lo)).copy_(_along(first, dim, slice(0, lo)))
        _along(y, dim, slice(hi, out)).copy_(_along(first, dim, slice(hi, out)))
        pending = rest[1:]
    for lo, hi, start in pending:
        part = _along(y, dim, slice(lo, hi))
        torch.maximum(part, view(lo, hi, start), out=part)
    return y


def _format(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


class SeparableMaxPool2d(nn.Module):
    """`nn.MaxPool2d` (dilation 1, no indices) as a max along the width, then along the height.

    The same values as the module it replaces, NaN included. Under torch.compile or torch.export
    it is the plain max pool again: inductor writes its own pooling kernel without indices.
    """

    def __init__(self, pool: nn.MaxPool2d):
        super().__init__()
        self.kernel_size, self.stride = _pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size)
        self.padding, self.ceil_mode = _pair(pool.padding), bool(pool.ceil_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if torch.compiler.is_compiling():
            return nn.functional.max_pool2d(x, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode)
        return running_max(running_max(x, 3, kw, sw, pw, self.ceil_mode), 2, kh, sh, ph, self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}")


def usable(pool: nn.MaxPool2d) -> bool:
    """A plain stride-1 2-D max pool: dilation 1, no indices returned, padding at most half the kernel.

    Strided pools stay torch's: measured on the CPU (GoogLeNet's and Inception v3's shapes), the
    separable form is 1.4–2× as fast at stride 1 and no faster at stride 2, where torch's pool reads
    each input once and the strided views do not.
    """
    if type(pool) is not nn.MaxPool2d or pool.return_indices or _pair(pool.dilation) != (1, 1):
        return False
    if _pair(pool.stride or pool.kernel_size) != (1, 1):
        return False
    return all(p <= k // 2 for p, k in zip(_pair(pool.padding), _pair(pool.kernel_size), strict=True))


def separable_maxpool(gm: fx.GraphModule) -> int:
    """Every plain stride-1 `nn.MaxPool2d` becomes a `SeparableMaxPool2d`, on the CPU. Exact. Returns how many."""
    if device_of(gm).type != "cpu":
        return 0
    replaced = 0
    for node in gm.graph.nodes:
        pool = gm.get_submodule(str(node.target)) if node.op == "call_module" else None
        if isinstance(pool, nn.MaxPool2d) and usable(pool):
            set_module(gm, str(node.target), SeparableMaxPool2d(pool))
            replaced += 1
    return replaced
