"""2-D convolution: `conv(out, k, s=1, p=0, d=1, groups=1, bias=true, exact=false)`.

`exact=true` makes the windows' tiling of the input a shape rule: an H or W whose last rows or
columns the stride would skip is refused (`indivisible-size`) rather than silently dropped. A
Vision Transformer's patch embedding (`conv(768, 16, s=16, exact=true)`) says so: torchvision's
ViT refuses an image size that is not a multiple of its patch size.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field

from .common import Padding, Pos, PosPair, check_spatial, conv_size, fmt_pair, fmt_window, need_chw
from .registry import Attrs, Op, Shape, ShapeError, SourceArgs, SourceForm, register
from .source import ctor, required


class ConvAttrs(Attrs):
    out: Pos = Field(validation_alias=AliasChoices("out", "out_channels"))
    k: PosPair = Field(validation_alias=AliasChoices("k", "kernel", "kernel_size"))
    s: PosPair = Field((1, 1), validation_alias=AliasChoices("s", "stride"))
    p: Padding = Field((0, 0), validation_alias=AliasChoices("p", "pad", "padding"))
    d: PosPair = Field((1, 1), validation_alias=AliasChoices("d", "dilation"))
    groups: Pos = 1
    bias: bool = True
    exact: bool = False


def _padding(a: ConvAttrs) -> tuple[int, int] | None:
    """Symmetric padding per side, or None for 'same' (computed by torch)."""
    if a.p == "valid":
        return (0, 0)
    if a.p == "same":
        return None
    return a.p


def _infer(a: ConvAttrs, ins: list[Shape]) -> Shape:
    """C×H×W → out×H′×W′ with H′ = ⌊(H + 2p − d·(k − 1) − 1) / s⌋ + 1, and likewise W′; `same` keeps H×W.
    Refuses an output below 1×1, `same` with a stride, and `groups` that does not divide both C and `out`;
    with `exact=true`, an H or W whose last rows or columns the windows leave out (`indivisible-size`)."""
    c, h, w = need_chw("conv", ins[0])
    if c % a.groups or a.out % a.groups:
        raise ShapeError(f"conv groups={a.groups} must divide both channel counts",
                         expected=f"in and out channels divisible by {a.groups}",
                         found=f"in {c}, out {a.out}")
    pad = _padding(a)
    if pad is None:
        if a.s != (1, 1):
            raise ShapeError("conv padding 'same' works only with stride 1 (as in PyTorch)",
                             expected="s=1", found=f"s={fmt_pair(a.s)}",
                             hint="give the padding as a number instead")
        out_hw = (h, w)
    else:
        out_hw = (conv_size(h, a.k[0], a.s[0], pad[0], a.d[0]),
                  conv_size(w, a.k[1], a.s[1], pad[1], a.d[1]))
    check_spatial("conv", (h, w), out_hw, lambda: f"{fmt_window(a.k, a.s)} p{_pad_text(a)}")
    if a.exact and pad is not None:
        _check_exact(a, pad, (h, w))
    return (a.out, out_hw[0], out_hw[1])


def _check_exact(a: ConvAttrs, pad: tuple[int, int], hw: tuple[int, int]) -> None:
    """Refuse a size the windows do not tile: (size + 2p − d·(k − 1) − 1) not a multiple of s."""
    left = [(size + 2 * p - d * (k - 1) - 1) % s for size, k, s, p, d in zip(hw, a.k, a.s, pad, a.d, strict=True)]
    if not any(left):
        return
    patches = a.k == a.s and pad == (0, 0) and a.d == (1, 1)
    if patches and a.k[0] == a.k[1]:
        expected = f"H and W multiples of {a.k[0]}"
    elif patches:
        expected = f"H a multiple of {a.k[0]} and W of {a.k[1]}"
    else:
        expected = "H + 2p − d·(k − 1) − 1 a multiple of s, and likewise W"
    dropped = " and ".join(f"{n} {what}{'s' if n > 1 else ''}"
                           for n, what in zip(left, ("row", "column"), strict=True) if n)
    what = (f"{a.k[0]}×{a.k[1]} patches (conv {fmt_window(a.k, a.s)}) leave" if patches
            else f"conv {fmt_window(a.k, a.s)} p{_pad_text(a)} with exact=true leaves")
    raise ShapeError(f"{what} the last {dropped} of a {hw[0]}×{hw[1]} input uncovered", expected=expected,
                     found=f"H×W = {hw[0]}×{hw[1]}", hint="change the input size or the patch size",
                     code="indivisible-size")


def _pad_text(a: ConvAttrs) -> str:
    return a.p if isinstance(a.p, str) else fmt_pair(a.p)


def _weights(a: ConvAttrs, ins: list[Shape], out: Shape) -> int:
    return a.out * (ins[0][0] // a.groups) * a.k[0] * a.k[1]


def _params(a: ConvAttrs, ins: list[Shape], out: Shape) -> int:
    return _weights(a, ins, out) + (a.out if a.bias else 0)


def _macs(a: ConvAttrs, ins: list[Shape], out: Shape) -> int:
    return _weights(a, ins, out) * out[1] * out[2]


def _emit(a: ConvAttrs, ins: list[Shape]):
    from torch import nn

    pad = _padding(a)
    return nn.Conv2d(ins[0][0], a.out, a.k, stride=a.s, padding="same" if pad is None else pad,
                     dilation=a.d, groups=a.groups, bias=a.bias)


def _source(a: SourceArgs) -> SourceForm:
    first = [a.in_ch(), required(a, "out"), required(a, "k")]
    keywords = {"s": "stride", "p": "padding", "d": "dilation", "groups": "groups", "bias": "bias"}
    return SourceForm(module=ctor("nn.Conv2d", a, first, keywords), out_ch=a.expr("out"))


def _label(a: ConvAttrs) -> str:
    extra = "" if a.groups == 1 else f" g{a.groups}"
    return f"conv {fmt_window(a.k, a.s)}, {a.out}{extra}"


register(Op(
    name="conv", attrs=ConvAttrs, infer=_infer, emit=_emit, params=_params, macs=_macs, weights=_weights,
    kind="conv", label=_label, source=_source, torch_modules=("Conv",), checks_only=("exact",),
    doc="2-D convolution. `k`, `s`, `d` take a number or a pair [h, w]; `p` a number, a pair, "
        "`same` (stride 1 only) or `valid`. Input channels are inferred. `exact=true` refuses an input the "
        "windows do not tile exactly (a patch embedding's size not a multiple of the patch).",
))
