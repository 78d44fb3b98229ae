"""Ops on the channel axis: `chunk(n, index)`, `slice(start, stop)` and `channel_shuffle(groups)`.

Ops have one output, so a split is written as one node per part, each reading
the same input: ShuffleNetV2's `x1, x2 = x.chunk(2, dim=1)` is `chunk(2, 0)`
and `chunk(2, 1)`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field

from .common import NonNeg, Pos, fmt_shape
from .registry import (
    Attrs,
    FunctionCall,
    Op,
    Shape,
    ShapeError,
    SourceArgs,
    SourceForm,
    channels_last,
    register,
    tokens,
)
from .source import helper, required


def _channels(name: str, shape: Shape) -> int:
    if channels_last(shape) or tokens(shape) or not shape:
        raise ShapeError(f"{name} works on the channels of C×H×W (or F)", expected="C×H×W or F",
                         found=fmt_shape(shape), hint="permute a channels-last tensor back first")
    return shape[0]


class ChunkAttrs(Attrs):
    chunks: Pos = Field(validation_alias=AliasChoices("chunks", "n"))
    index: NonNeg = 0


def _chunk_span(a: ChunkAttrs, c: int) -> tuple[int, int]:
    """(start, length) of the chunk, as torch.chunk cuts: chunks of ⌈C / n⌉, the last one shorter."""
    size = -(-c // a.chunks)
    start = a.index * size
    if a.index >= a.chunks or start >= c:
        count = -(-c // size)
        raise ShapeError(f"chunk {a.index} of {a.chunks} does not exist for {c} channels",
                         expected=f"index < {count}" if count < a.chunks else f"index < {a.chunks}",
                         found=f"index {a.index}",
                         hint=f"torch cuts {c} channels into {count} chunks of at most {size}")
    return start, min(size, c - start)


def _chunk_infer(a: ChunkAttrs, ins: list[Shape]) -> Shape:
    """C×H×W → L×H×W, part `index` of C cut into `chunks` parts of ⌈C / chunks⌉ (the last may be shorter,
    as `torch.chunk` cuts): `chunk(2, 0)` and `chunk(2, 1)` are the halves. Likewise F → L.
    Refuses an index past the last part."""
    c = _channels("chunk", ins[0])
    return (_chunk_span(a, c)[1], *ins[0][1:])


def _chunk_emit(a: ChunkAttrs, ins: list[Shape]) -> FunctionCall:
    """`torch.narrow` over the chunk's channels: one slice instead of `chunk` and an index."""
    import torch

    c = ins[0][0]
    size = -(-c // a.chunks)
    start = a.index * size
    length = min(size, c - start) if start < c else -1  # no such chunk: narrow refuses, as chunk()[index] does
    return FunctionCall(torch.narrow, args=(1, start, length))


def _chunk_source(a: SourceArgs) -> SourceForm:
    n, i = required(a, "chunks"), a.arg("index") or "0"
    return SourceForm(call=lambda xs: f"{xs[0]}.chunk({n}, 1)[{i}]")


register(Op(
    name="chunk", attrs=ChunkAttrs, infer=_chunk_infer, emit=_chunk_emit, source=_chunk_source, kind="reshape",
    label=lambda a: f"chunk {a.index} of {a.chunks}",
    doc="One part of the channels cut into `chunks` parts, as `x.chunk(chunks, dim=1)[index]`.",
))


class SliceAttrs(Attrs):
    start: NonNeg
    stop: Annotated[int, Field(ge=1, strict=True)] | None = None


def _slice_infer(a: SliceAttrs, ins: list[Shape]) -> Shape:
    """C×H×W → (stop − start)×H×W, channels `start` to `stop` (exclusive; `stop` defaults to C), as
    `x[:, start:stop]`. Likewise F. Refuses an empty or out-of-range slice."""
    c = _channels("slice", ins[0])
    stop = c if a.stop is None else a.stop
    if not a.start < stop <= c:
        raise ShapeError(f"slice {a.start}:{stop} is not a non-empty part of {c} channels",
                         expected=f"0 ≤ start < stop ≤ {c}", found=f"start {a.start}, stop {stop}")
    return (stop - a.start, *ins[0][1:])


def _slice_emit(a: SliceAttrs, ins: list[Shape]) -> FunctionCall:
    import torch

    stop = ins[0][0] if a.stop is None else a.stop
    length = stop - a.start if stop > a.start else -1  # an empty slice: narrow refuses
    return FunctionCall(torch.narrow, args=(1, a.start, length))


def _slice_source(a: SourceArgs) -> SourceForm:
    start, stop = required(a, "start"), a.arg("stop") or ""
    return SourceForm(call=lambda xs: f"{xs[0]}[:, {start}:{stop}]")


register(Op(
    name="slice", attrs=SliceAttrs, infer=_slice_infer, emit=_slice_emit, source=_slice_source, kind="reshape",
    label=lambda a: f"channels {a.start}:{'' if a.stop is None else a.stop}",
    doc="Channels `start` to `stop` (exclusive; to the end if left out), as `x[:, start:stop]`.",
))


class ShuffleAttrs(Attrs):
    groups: Pos


def _shuffle_infer(a: ShuffleAttrs, ins: list[Shape]) -> Shape:
    """C×H×W → C×H×W with the channels of `groups` groups interleaved (ShuffleNet). Refuses `groups` that
    does not divide C."""
    c = _channels("channel_shuffle", ins[0])
    if len(ins[0]) != 3 or c % a.groups:
        raise ShapeError(f"channel_shuffle with {a.groups} groups needs C×H×W with C divisible by {a.groups}",
                         expected=f"C×H×W, C a multiple of {a.groups}", found=fmt_shape(ins[0]))
    return ins[0]


def _shuffle_emit(a: ShuffleAttrs, ins: list[Shape]) -> FunctionCall:
    from .modules import channel_shuffle

    return FunctionCall(channel_shuffle, args=(a.groups,))


def _shuffle_source(a: SourceArgs) -> SourceForm:
    groups = required(a, "groups")
    return SourceForm(call=lambda xs: f"channel_shuffle({xs[0]}, {groups})", helpers=(helper("channel_shuffle"),))


register(Op(
    name="channel_shuffle", attrs=ShuffleAttrs, infer=_shuffle_infer, emit=_shuffle_emit, source=_shuffle_source,
    kind="reshape", label=lambda a: f"shuffle {a.groups}",
    doc="Interleaves the channels of `groups` equal groups (ShuffleNet): channel k·groups + g of the output "
        "is channel g·(C / groups) + k of the input.",
))
