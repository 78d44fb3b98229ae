"""Static int8 on the CPU: oneDNN's int8 convolutions, uint8 activations between them.

Activations are unsigned 8-bit codes with one (scale, zero point) per tensor, fixed by calibration;
weights are signed 8-bit, symmetric, one scale per output channel. Each conv reads codes and writes
codes at its output's scale (the requantisation and a following activation — ReLU, ReLU6/Hardtanh,
Hardswish, SiLU — run inside oneDNN's call), or writes float32 where nothing after it takes codes.
Max pools, average pools and channel concats run on the codes themselves: a max of codes is the code
of the max, an average of codes is (rounded) the code of the average at the same scale, and the inputs
of a concat are given the concat's scale by the convs that make them, so the concat is a plain copy.
A residual add of a conv's output (and the ReLU after it) runs inside that conv's call, reading the
other operand as codes. Every other op runs in float32 on dequantised values.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..common import Repacked, absorb, add_module, bypass, example_input, is_relu, set_module, sole_user
from ..fuse_conv import PostOp, post_op, residual_add
from ..separable_maxpool import SeparableMaxPool2d, _pair, running_max
from .calibrate import Range, qparams

QParams = tuple[float, int]

INT8_POST_OPS = frozenset({"relu", "hardtanh", "hardswish", "swish"})
"""The `fuse_conv` post-ops oneDNN's int8 convolution runs inside the call (torch 2.14 refuses the others);
with a residual add ("sum") it runs ReLU alone."""


class Quantize(nn.Module):
    """float32 → uint8 codes: round(x / scale) + zero point, clamped to [0, 255]."""

    def __init__(self, q: QParams):
        super().__init__()
        self.scale, self.zero_point = q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x / scale + zero point, rounded half up (the truncation of + 0.5 once clamped to [0, 255]): one
        # new tensor and two passes over it in place, instead of four tensors (measured 1.6-3x as fast)
        return x.mul(1.0 / self.scale).add_(self.zero_point + 0.5).clamp_(0, 255).to(torch.uint8)

    def extra_repr(self) -> str:
        return f"scale={self.scale:.4g}, zero_point={self.zero_point}"


class Dequantize(Quantize):
    """uint8 codes → float32: (code - zero point) · scale."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.to(torch.float32) - self.zero_point) * self.scale


class Requantize(Quantize):
    """uint8 codes at one scale → codes at this one (where a concat input comes from a pool, not a conv)."""

    def __init__(self, source: QParams, q: QParams):
        super().__init__(q)
        self.source = Dequantize(source)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.source(x))


class QuantizedConv2d(Repacked, nn.Module):
    """A 2-D convolution on uint8 codes through oneDNN (VNNI): int8 weights per channel, packed once.

    `out` is the (scale, zero point) of the codes it writes, or None to write float32. `post` (one of
    `INT8_POST_OPS`) runs inside the call, before the requantisation. With `residual` the call takes a second
    tensor of the output's shape and adds it before the ReLU (oneDNN's "sum" post-op: ResNet's
    conv → add → ReLU as one call): uint8 codes at the (scale, zero point) `residual` gives when the
    output is codes, float32 when it is float32 (`residual` is then (1.0, 0)). torch's op writes the
    sum into that second tensor too (its schema marks it mutated; it computes into a copy and copies
    the result back, about 3 % of ResNet-50's int8 time): the rewrite hands it a tensor nothing reads
    afterwards.
    """

    exports_unpacked = True
    """torch.export traces `reference`, never the packed weight (archspec.export checks this flag)."""
    weight: torch.Tensor
    w_scale: torch.Tensor
    w_zero_point: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, conv: nn.Conv2d, input_shape: torch.Size, x_q: QParams, out: QParams | None,
                 post: PostOp | None = None, residual: QParams | None = None):
        super().__init__()
        w = conv.weight.detach().float()
        scale = w.abs().amax(dim=(1, 2, 3)) / 127.0
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        codes = torch.clamp(torch.round(w / scale[:, None, None, None]), -127, 127).to(torch.int8)
        self.register_buffer("weight", codes.contiguous())  # plain layout: torch.export saves it whole
        self.register_buffer("w_scale", scale)
        self.register_buffer("w_zero_point", torch.zeros(len(scale), dtype=torch.int64))
        self.register_buffer("bias", conv.bias.detach().float().clone() if conv.bias is not None else None)
        self.padding: list[int] = list(conv.padding)  # type: ignore[arg-type]
        self.stride, self.dilation, self.groups = list(conv.stride), list(conv.dilation), conv.groups
        self.input_shape = list(input_shape)
        self.x_scale, self.x_zero_point = x_q
        self.out_scale, self.out_zero_point = out if out is not None else (1.0, 0)
        self.out_dtype = None if out is not None else torch.float32
        self.post = post or PostOp("none")
        assert self.post.attr in INT8_POST_OPS | {"none"} and (residual is None or self.post.attr in ("relu", "none"))
        self.attr, self.scalars, self.algorithm = self.post.attr, list(self.post.scalars), self.post.algorithm
        self.residual = residual is not None
        self.residual_scale, self.residual_zero_point = residual if residual is not None else (1.0, 0)
        self._pack()

    def _pack(self) -> None:
        """oneDNN's blocked int8 weight (see `Repacked`)."""
        self.packed = torch.ops.onednn.qconv_prepack(self.weight, self.w_scale, self.x_scale, self.x_zero_point,
                                                     self.stride, self.padding, self.dilation, self.groups,
                                                     self.input_shape)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if torch.compiler.is_compiling() or torch.compiler.is_exporting():
            return self.reference(x, residual)
        if residual is None:
            return torch.ops.onednn.qconv2d_pointwise(
                x, self.x_scale, self.x_zero_point, self.packed, self.w_scale, self.w_zero_point, self.bias,
                self.stride, self.padding, self.dilation, self.groups, self.out_scale, self.out_zero_point,
                self.out_dtype, self.attr, self.scalars, self.algorithm)
        return torch.ops.onednn.qconv2d_pointwise.binary(
            x, self.x_scale, self.x_zero_point, self.packed, self.w_scale, self.w_zero_point, residual, self.bias,
            self.stride, self.padding, self.dilation, self.groups, self.out_scale, self.out_zero_point,
            self.out_dtype, self.residual_scale, self.residual_zero_point, "sum", 1.0, self.attr, self.scalars,
            self.algorithm)

    def reference(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """The same arithmetic in plain torch ops, on float values of the codes: what torch.export saves
        (the packed weight is opaque to it); the int8 weights are kept, as int8. It writes no input."""
        w = self.weight.float() * self.w_scale[:, None, None, None]
        y = nn.functional.conv2d((x.float() - self.x_zero_point) * self.x_scale, w, self.bias, self.stride,
                                 self.padding, self.dilation, self.groups)
        if residual is not None:
            y = y + (residual.float() - self.residual_zero_point) * self.residual_scale
        y = self.post.apply(y)
        if self.out_dtype is not None:
            return y
        return torch.clamp(torch.round(y * (1.0 / self.out_scale)) + self.out_zero_point, 0, 255).to(torch.uint8)

    def extra_repr(self) -> str:
        out = "float32" if self.out_dtype is not None else f"uint8 scale={self.out_scale:.4g}"
        post = ("residual add, " if self.residual else "") + f"post_op={self.attr}" + (
            f"{tuple(self.scalars)}" if self.scalars else "")
        return f"out_channels={self.weight.shape[0]}, stride={tuple(self.stride)}, {post}, out={out}"


class MaxPoolCodes(SeparableMaxPool2d):
    """A max pool of uint8 codes (a max of codes is the code of the max).

    Eagerly it is one call of torch's quantized max pool, which takes plain uint8 tensors and keeps
    channels-last: measured at GoogLeNet's shapes, 1.2-3x as fast as the two running maxima of
    `SeparableMaxPool2d` on codes, and one parallel region instead of some twenty ops (on a busy
    machine every extra region waits for its threads). Under torch.export or torch.compile it is
    the running maxima, plain aten ops (torch's own CPU max pool refuses channels-last uint8 input).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling() or torch.compiler.is_exporting():
            return self.reference(x)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return torch.ops.quantized.max_pool2d(x, [kh, kw], [sh, sw], [ph, pw], [1, 1], self.ceil_mode)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """The same pool as two running maxima of plain aten ops: what torch.export saves."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return running_max(running_max(x, 3, kw, sw, pw, self.ceil_mode), 2, kh, sh, ph, self.ceil_mode)


class AvgPoolCodes(nn.Module):
    """An average pool of uint8 codes, written at the input's scale (an average stays within its input's range).

    Eagerly it is torch's quantized average pool, on a per-tensor quint8 view of the codes (no copy in):
    measured at Inception v3's shapes 1.7-10x as fast as dequantise, pool, quantise, and equal to it code for
    code (both round to nearest; zero padding is the zero point's code). Under torch.export or torch.compile
    it is the same arithmetic in plain aten ops on float values of the codes.
    """

    def __init__(self, pool: nn.AvgPool2d, q: QParams):
        super().__init__()
        self.kernel_size, self.stride, self.padding = _pair(pool.kernel_size), _pair(pool.stride), _pair(pool.padding)
        self.ceil_mode, self.count_include_pad = pool.ceil_mode, pool.count_include_pad
        self.scale, self.zero_point = q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling() or torch.compiler.is_exporting():
            return self.reference(x)
        with warnings.catch_warnings():  # quint8 tensors are deprecated; this op has no other uint8 route yet
            warnings.simplefilter("ignore", UserWarning)
            qx = torch._make_per_tensor_quantized_tensor(x, self.scale, self.zero_point)
        return F.avg_pool2d(qx, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad).int_repr()

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """The same pool in plain aten ops: what torch.export saves."""
        y = F.avg_pool2d(x.float() - self.zero_point, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                         self.count_include_pad)
        return torch.clamp(torch.round(y) + self.zero_point, 0, 255).to(torch.uint8)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"scale={self.scale:.4g}, zero_point={self.zero_point}")


def _avg_pool(gm: fx.GraphModule, node: fx.Node) -> nn.AvgPool2d | None:
    m = gm.get_submodule(str(node.target)) if node.op == "call_module" else None
    return m if type(m) is nn.AvgPool2d and m.divisor_override is None else None


def _conv(gm: fx.GraphModule, node: fx.Node, shapes: dict[str, torch.Size]) -> nn.Conv2d | None:
    m = gm.get_submodule(str(node.target)) if node.op == "call_module" else None
    if type(m) is nn.Conv2d and m.padding_mode == "zeros" and not isinstance(m.padding, str) \
            and str(node.target) in shapes:
        return m
    return None


def _pool(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    """A max pool that runs on codes as it is: separable already, or a plain one that can be made so."""
    m = gm.get_submodule(str(node.target)) if node.op == "call_module" else None
    if isinstance(m, SeparableMaxPool2d):
        return m
    if type(m) is nn.MaxPool2d and not m.return_indices and _pair(m.dilation) == (1, 1) and all(
            p <= k // 2 for p, k in zip(_pair(m.padding), _pair(m.kernel_size), strict=True)):
        return m
    return None


def _is_channel_cat(node: fx.Node) -> bool:
    if node.op != "call_function" or node.target is not torch.cat or not isinstance(node.args[0], (list, tuple)):
        return False
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    return dim in (1, -3)


def _shared_ranges(gm: fx.GraphModule, ranges: dict[str, Range]) -> dict[str, Range]:
    """The range each concat input is written in: its concat's, outermost concat first (nested concats too)."""
    shared: dict[str, Range] = {}
    for cat in reversed(list(gm.graph.nodes)):
        if not _is_channel_cat(cat) or cat.name not in ranges:
            continue
        r = shared.setdefault(cat.name, ranges[cat.name])
        for src in cat.args[0]:
            if isinstance(src, fx.Node) and len(src.users) == 1:
                shared.setdefault(src.name, r)
    return shared


def _shape(node: Any) -> torch.Size | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return getattr(meta, "shape", None)


class _Rewriter:
    """Walks the graph once, in order, replacing convs by int8 ones and tracking which values are codes."""

    def __init__(self, gm: fx.GraphModule, ranges: dict[str, Range]):
        self.gm, self.graph, self.ranges = gm, gm.graph, ranges
        gm.recompile()  # the graph may have changed since the code was generated
        with torch.inference_mode():
            ShapeProp(gm).propagate(example_input(gm))
        self.shapes = {str(n.target): shape for n in self.graph.nodes if n.op == "call_module"
                       and type(gm.get_submodule(str(n.target))) is nn.Conv2d and (shape := _shape(n.args[0]))}
        self.shared = _shared_ranges(gm, ranges)
        self.order = {n: i for i, n in enumerate(self.graph.nodes)}
        self.codes: dict[fx.Node, QParams] = {}  # values held as uint8 codes, with their qparams
        self.cache: dict[tuple[fx.Node, Any], fx.Node] = {}
        self.erased: set[fx.Node] = set()
        self.rewritten: set[fx.Node] = set()  # the int8 convs made so far (their outputs are new tensors)
        self.convs = 0
        self.fused_adds = 0

    def join(self, add: fx.Node) -> tuple[fx.Node, fx.Node] | None:
        """(conv, other) where `add` is `conv + other` of equal shapes and the conv, not yet rewritten, is read by
        the add alone; where both operands are such convs (ResNet's downsampling blocks) the later one takes
        the add, so that the other is written (as codes) before it runs."""
        a = add.args[0] if add.op == "call_function" and add.args else None
        if not isinstance(a, fx.Node):
            return None
        b = residual_add(add, a)  # the add's other operand, a node, if it is a plain binary add
        if b is None or _shape(a) is None or _shape(a) != _shape(b):
            return None
        convs = [n for n in (a, b) if _conv(self.gm, n, self.shapes) is not None and sole_user(n) is add]
        if not convs:
            return None
        conv = max(convs, key=self.order.__getitem__)
        return conv, b if a is conv else a

    def q_of(self, node: fx.Node) -> QParams:
        return qparams(self.shared.get(node.name) or self.ranges[node.name])

    def value_of(self, tail: fx.Node) -> tuple[fx.Node, PostOp | None]:
        """The value a conv ending at `tail` (itself or its residual add) writes, and the activation that ends it
        inside the call, if any (after a residual add, a ReLU only)."""
        after = sole_user(tail)
        if after is None:
            return tail, None
        if tail.op == "call_function":  # a residual add
            return (after, PostOp("relu")) if is_relu(self.gm, after) else (tail, None)
        post = post_op(self.gm, after)
        return (after, post) if post is not None and post.attr in INT8_POST_OPS else (tail, None)

    def takes_codes(self, node: fx.Node) -> bool:
        if _conv(self.gm, node, self.shapes) is not None or _pool(self.gm, node) is not None \
                or _avg_pool(self.gm, node) is not None or _is_channel_cat(node):
            return True
        return self.join(node) is not None and any(self.takes_codes(u) for u in self.value_of(node)[0].users)

    def insert_after(self, src: fx.Node, key: Any, make: nn.Module) -> fx.Node:
        """One conversion node per (value, kind), right after the value is made."""
        if (src, key) not in self.cache:
            name = add_module(self.gm, f"{src.name}_{type(make).__name__.lower()}", make)
            with self.graph.inserting_after(src):
                self.cache[(src, key)] = self.graph.call_module(name, (src,))
        return self.cache[(src, key)]

    def as_codes(self, src: fx.Node, q: QParams) -> fx.Node:
        if src not in self.codes:
            return self.insert_after(src, ("q", q), Quantize(q))
        if self.codes[src] == q:
            return src
        return self.insert_after(src, ("rq", q), Requantize(self.codes[src], q))

    def as_float(self, src: Any) -> Any:
        if isinstance(src, fx.Node) and src in self.codes:
            return self.insert_after(src, "dq", Dequantize(self.codes[src]))
        return src

    def run(self) -> int:
        for node in list(self.graph.nodes):
            if node in self.erased:
                continue
            if (conv := _conv(self.gm, node, self.shapes)) is not None:
                self.conv(node, conv)
            elif (pool := _pool(self.gm, node)) is not None and node.args[0] in self.codes:
                set_module(self.gm, str(node.target), MaxPoolCodes(pool))  # type: ignore[arg-type]
                self.codes[node] = self.codes[node.args[0]]
            elif (avg := _avg_pool(self.gm, node)) is not None and node.args[0] in self.codes:
                set_module(self.gm, str(node.target), AvgPoolCodes(avg, self.codes[node.args[0]]))
                self.codes[node] = self.codes[node.args[0]]
            elif _is_channel_cat(node) and any(src in self.codes for src in node.args[0]):
                q = self.q_of(node)
                node.args = ([self.as_codes(src, q) for src in node.args[0]], *node.args[1:])
                self.codes[node] = q
            else:
                node.args = fx.node.map_arg(node.args, self.as_float)
                node.kwargs = fx.node.map_arg(node.kwargs, self.as_float)
        return self.convs

    def overwritable(self, other: fx.Node, add: fx.Node, src: fx.Node, codes: bool) -> bool:
        """Whether the residual `other`, as codes (or as float32), may be overwritten where `add` runs: it is a
        value this rewrite makes or converts, not the conv's own input, and nothing reads it after `add`."""
        if other is src or (not codes and other not in self.codes and other not in self.rewritten):
            return False  # a float32 value of the graph's own could be a view of one read elsewhere
        order = {n: i for i, n in enumerate(self.graph.nodes)}
        readers = [*other.users, *(u for (v, _), made in self.cache.items() if v is other for u in made.users)]
        return all(order[u] < order[add] for u in readers if u is not add)

    def conv(self, node: fx.Node, conv: nn.Conv2d) -> None:
        src = node.args[0]
        assert isinstance(src, fx.Node)
        x_q = self.codes.get(src) or self.q_of(src)
        user = sole_user(node)
        join = self.join(user) if user is not None else None
        add, other = (user, join[1]) if join is not None and join[0] is node else (None, None)
        value, post = self.value_of(add if add is not None else node)
        out = self.q_of(value) if any(self.takes_codes(u) for u in value.users) else None
        if add is not None and other is not None and not self.overwritable(other, add, src, out is not None):
            value, post = self.value_of(node)
            out = self.q_of(value) if any(self.takes_codes(u) for u in value.users) else None
            add = other = None
        x = self.as_codes(src, x_q)
        residual: QParams | None = None
        if add is not None and other is not None:
            if out is not None:
                residual = self.codes.get(other) or self.q_of(other)
                accum = self.as_codes(other, residual)
            else:
                residual, accum = (1.0, 0), self.as_float(other)
            add.prepend(node)  # the conv now runs where the add ran, once both operands exist
            node.args = (x, accum)
            absorb(node, add)
            bypass(self.graph, add, node)
            self.erased.add(add)
            self.fused_adds += 1
        else:
            node.args = (x, *node.args[1:])
        if post is not None and value is not node:
            absorb(node, value)
            bypass(self.graph, value, node)
            self.erased.add(value)
        set_module(self.gm, str(node.target),
                   QuantizedConv2d(conv, self.shapes[str(node.target)], x_q, out, post, residual))
        if out is not None:
            self.codes[node] = out
        self.rewritten.add(node)
        self.convs += 1


def quantize_int8(gm: fx.GraphModule, ranges: dict[str, Range]) -> int:
    """Every 2-D conv becomes a `QuantizedConv2d` at the scales `ranges` (from `calibrate.observe`) give.

    Returns the number of convs quantised. The graph's output is float32.
    """
    return _Rewriter(gm, ranges).run()


__all__ = ["AvgPoolCodes", "Dequantize", "INT8_POST_OPS", "QuantizedConv2d", "Quantize", "Requantize", "quantize_int8"]
