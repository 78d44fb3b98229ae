"""Attribute types and size arithmetic shared by the spatial ops.

The formulas follow PyTorch's to the letter (aten `conv_output_size` and
`pooling_output_shape`), including ceil mode's rule that the last window must
start inside the input or its left padding.
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Literal

from pydantic import BeforeValidator, Field

from .registry import Shape, ShapeError, channels_last, tokens

MAX_SIZE = 2**31 - 1
"""The largest size an op attribute may give (a channel count, a kernel size, a padding): torch's int32 limit."""
MAX_ELEMENTS = 2**31 - 1
"""The most elements a tensor of one image may have (a node's output, the input)."""
MAX_PARAMS = 2**40
"""The most parameters one node may have: 4 TiB in float32, past any machine. (Real layers pass 2^31, a
language model's embedding; torch holds them, and `build --device meta` makes them.)"""

Pos = Annotated[int, Field(ge=1, le=MAX_SIZE, strict=True)]
NonNeg = Annotated[int, Field(ge=0, le=MAX_SIZE, strict=True)]


def elements(shape: Shape) -> int:
    """The number of elements of a tensor of this shape."""
    n = 1
    for d in shape:
        n *= d
    return n


def to_pair(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return tuple(v)
    if isinstance(v, (list, tuple)):
        raise ValueError(f"expected one number or a pair [h, w], found {len(v)} numbers")
    return v


PosPair = Annotated[tuple[Pos, Pos], BeforeValidator(to_pair)]
NonNegPair = Annotated[tuple[NonNeg, NonNeg], BeforeValidator(to_pair)]
Padding = Annotated[tuple[NonNeg, NonNeg] | Literal["same", "valid"], BeforeValidator(to_pair)]


def same_shape(a: object, ins: list[Shape]) -> Shape:
    """Any shape → the same shape."""
    return ins[0]


def fmt_shape(shape: Shape | None) -> str:
    """`64×56×56`; a channels-last shape says so: `56×56×64 (H×W×C)`, and tokens: `197×768 (tokens)`."""
    if shape is None:
        return "?"
    mark = " (H×W×C)" if channels_last(shape) else " (tokens)" if tokens(shape) else ""
    return "×".join(str(d) for d in shape) + mark


def fmt_window(k: tuple[int, int], s: tuple[int, int]) -> str:
    """A kernel and stride as papers print them: `3×3/2`, `1×7/1`."""
    return f"{k[0]}×{k[1]}/{fmt_pair(s)}"


def fmt_pair(p: tuple[int, int], sep: str = "×") -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}{sep}{p[1]}"


def need_chw(name: str, shape: Shape) -> tuple[int, int, int]:
    if tokens(shape):
        raise ShapeError(f"{name} needs a C×H×W input, not a token sequence", expected="C×H×W",
                         found=fmt_shape(shape),
                         hint="tokens have no H×W: spatial ops go before `to_tokens`")
    if channels_last(shape):
        raise ShapeError(f"{name} needs a channels-first C×H×W input", expected="C×H×W", found=fmt_shape(shape),
                         hint="this tensor has its channels last: put `permute([0, 3, 1, 2])` before it")
    if len(shape) != 3:
        raise ShapeError(f"{name} needs a C×H×W input", expected="C×H×W", found=fmt_shape(shape),
                         hint="a flattened tensor cannot go into a spatial op; move `flatten` later")
    return shape[0], shape[1], shape[2]


def _floordiv(a: int, b: int) -> int:
    return a // b  # Python floors toward -inf, as aten's div_rtn does


def conv_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return _floordiv(size + 2 * p - d * (k - 1) - 1, s) + 1


def pool_size(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    out = _floordiv(size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0), s) + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def check_spatial(op: str, in_hw: tuple[int, int], out_hw: tuple[int, int], what: Callable[[], str]) -> None:
    """Refuse an output size below 1, naming the input size that caused it (`what()` describes the op)."""
    if out_hw[0] < 1 or out_hw[1] < 1:
        raise ShapeError(
            f"{op} {what()} turns a {in_hw[0]}×{in_hw[1]} input into {out_hw[0]}×{out_hw[1]}",
            expected="an output of at least 1×1",
            found=f"{out_hw[0]}×{out_hw[1]}",
            code="input-too-small",
        )
