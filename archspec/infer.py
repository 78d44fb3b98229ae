"""Stage 5, infer: one pass in topological order applies each op's shape rule and counts.

Shape rules are pure functions of (attributes, input shapes) from the op
registry; nothing here imports torch. A node whose inputs failed is skipped,
so one fault is reported once, at the first node where it happens. When a
spatial size collapses, the smallest input the network accepts is computed
(by running the shape rules over candidate sizes) and given as a hint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter

from .errors import Diagnostics
from .graph import Graph
from .ir import INPUT, Network
from .ops import REGISTRY, Shape, ShapeError
from .ops.common import MAX_ELEMENTS, MAX_PARAMS, elements, fmt_shape

MAX_MIN_INPUT = 4096
MIN_INPUT_BUDGET = 500_000
"""Node visits the search for the smallest input may make, over all the sizes it tries."""


@dataclass(frozen=True)
class NodeInfo:
    """What inference knows about a node: output shape (batch left out), params, MACs."""

    shape: Shape
    params: int
    macs: int


@dataclass
class TypedGraph:
    """A graph whose every node has a shape, a parameter count and a MAC count."""

    graph: Graph
    input_shape: Shape
    info: dict[str, NodeInfo]
    _smallest: dict[bool, tuple[int, int] | None] = field(default_factory=dict, repr=False)

    @property
    def net(self) -> Network:
        return self.graph.net

    @property
    def order(self) -> list[str]:
        return self.graph.order

    def shape(self, name: str) -> Shape:
        return self.info[name].shape

    def total(self, what: str, inference: bool = False) -> int:
        """Sum of `params` or `macs` over all nodes, or over the inference graph only."""
        names = self.graph.eval_nodes() if inference else self.order
        return sum(map(attrgetter(what), map(self.info.__getitem__, names)))

    def scope_total(self, path: str, what: str) -> int:
        prefix = path + "/"
        return sum(getattr(i, what) for n, i in self.info.items() if n == path or n.startswith(prefix))

    def smallest_input(self, inference: bool = False) -> tuple[int, int] | None:
        """`min_input` of this graph at its input's channel count, computed once per mode."""
        if inference not in self._smallest:
            self._smallest[inference] = min_input(self.graph, self.input_shape, inference=inference)
        return self._smallest[inference]

    def output_shapes(self) -> dict[str, Shape]:
        return {k: self.info[v].shape for k, v in self.net.outputs.items()}


def infer(graph: Graph, input_shape: Shape | None = None) -> TypedGraph:
    """Infer shapes and counts; raises SpecError at the first node of each fault."""
    net = graph.net
    shape = tuple(input_shape or net.input_shape)
    diags = Diagnostics()
    info = _run(graph, shape, diags)
    diags.raise_if_errors(net.sources)
    return TypedGraph(graph, shape, info)


def _run(graph: Graph, input_shape: Shape, diags: Diagnostics | None,
         names: list[str] | None = None) -> dict[str, NodeInfo]:
    nodes, inputs = graph.net.nodes, graph.inputs
    info: dict[str, NodeInfo] = {INPUT: NodeInfo(input_shape, 0, 0)}
    # Shape rules and counts are pure functions of (attributes, input shapes), and the nodes of a block
    # used many times share their attributes' object (expand's `call_key`): each such pair is worked out once.
    known: dict[tuple, NodeInfo] = {}
    for name in names or graph.order:
        if name == INPUT:
            continue
        node = nodes[name]
        srcs = inputs[name]
        try:
            ins = [info[s].shape for s in srcs]
        except KeyError:  # an input failed: its fault is reported there
            continue
        key = (node.op, id(node.attrs), *ins)
        same = known.get(key)
        if same is not None:
            info[name] = same
            continue
        op = REGISTRY[node.op]
        try:
            out = op.infer(node.attrs, ins)
        except ShapeError as exc:
            if diags is None:
                return info
            _report(graph, name, exc, ins, input_shape, diags)
            continue
        if elements(out) > MAX_ELEMENTS:
            if diags is None:
                return info
            _report(graph, name, _too_large("elements", out, ins), ins, input_shape, diags)
            continue
        if diags is None:  # a shape-only run (min_input): counts are not needed
            info[name] = known[key] = NodeInfo(out, 0, 0)
            continue
        params = op.params(node.attrs, ins, out)
        if params > MAX_PARAMS:
            _report(graph, name, _too_large("parameters", (params,), ins), ins, input_shape, diags)
            continue
        info[name] = known[key] = NodeInfo(out, params, op.macs(node.attrs, ins, out))
    return info


def _too_large(what: str, shape: Shape, ins: list[Shape]) -> ShapeError:
    """A node whose output (a shape) passes MAX_ELEMENTS, or whose parameters (a count, `(n,)`) MAX_PARAMS."""
    n = elements(shape)
    message = (f"the node would have {n:,} parameters" if what == "parameters"
               else f"the node's output would have {n:,} elements per image")
    bound = f"{MAX_PARAMS:,} (2^40)" if what == "parameters" else f"{MAX_ELEMENTS:,} (2^31 - 1)"
    return ShapeError(message, expected=f"at most {bound} {what}",
                      found=f"{n:,}" if what == "parameters" else f"{fmt_shape(shape)} = {n:,}",
                      hint="a size in this node or before it is far larger than any network needs",
                      code="tensor-too-large")


def _report(graph: Graph, name: str, exc: ShapeError, ins: list[Shape], input_shape: Shape,
            diags: Diagnostics) -> None:
    node = graph.net.nodes[name]
    if exc.code == "input-too-small" and any(d.code == "input-too-small" for d in diags.items):
        return
    hint = exc.hint
    if exc.code == "input-too-small":
        hint = _smallest_hint(graph, input_shape) + _head_switch(graph, node.head)
    elif exc.code == "indivisible-size":  # a size the input does not divide: say which inputs work
        hint = "; ".join(h for h in (exc.hint, _nearest_hint(graph, input_shape), _smallest_hint(graph, input_shape))
                         if h)
    notes = [(node.origin, f"{node.op} written here")] if node.origin and node.origin != node.loc else []
    found = exc.found if exc.found is not None else ", ".join(fmt_shape(s) for s in ins)
    diags.error(exc.code, exc.message, loc=node.loc, path=name, expected=exc.expected, found=found, hint=hint,
                notes=notes)


def _smallest_hint(graph: Graph, input_shape: Shape) -> str:
    given = "×".join(str(d) for d in input_shape[1:])
    smallest, tried = search_min_input(graph, input_shape)
    if smallest is None:
        hint = f"no input up to {tried}×{tried} works for this network"
        if tried < MAX_MIN_INPUT:
            larger = _probe_larger(graph, input_shape, tried)
            hint += f"; {larger}×{larger} does" if larger else f", nor {MAX_MIN_INPUT}×{MAX_MIN_INPUT}"
        return hint
    hint = f"the smallest input this network accepts is {smallest[0]}×{smallest[1]} (given {given})"
    at_inference = min_input(graph, input_shape, inference=True)
    if at_inference is not None and at_inference != smallest:
        hint += f"; without its training-only heads, {at_inference[0]}×{at_inference[1]}"
    return hint


def _nearest_hint(graph: Graph, input_shape: Shape) -> str | None:
    """The inputs nearest the given H×W, below and above, at which the network works (for an input a size
    must divide); None if none is found within MIN_INPUT_BUDGET node visits."""
    found = [size for size in _nearest_sizes(graph, input_shape) if size is not None]
    if not found:
        return None
    sizes = " and ".join(f"{h}×{w}" for h, w in found)
    return f"the nearest input{'s' if len(found) > 1 else ''} that work{'' if len(found) > 1 else 's'}: {sizes}"


def _nearest_sizes(graph: Graph, input_shape: Shape) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """The working H×W nearest the given one from below and from above.

    Each axis is moved on its own toward the nearest size that works as a square input (the
    constraints that refuse a size — patches, windows, strides — hold per axis); each pair found
    is then checked as a whole.
    """
    c, h, w = input_shape
    visited = 0

    def works(rows: int, cols: int) -> bool:
        nonlocal visited
        reached = len(_run(graph, (c, rows, cols), None))
        visited += reached
        return reached == len(graph.order)

    def nearest(size: int, step: int) -> int | None:
        t = size
        while 1 <= t <= MAX_MIN_INPUT and visited < MIN_INPUT_BUDGET:
            if works(t, t):
                return t
            t += step
        return None

    out: list[tuple[int, int] | None] = []
    for step in (-1, 1):
        rows = nearest(h, step)
        cols = rows if w == h else nearest(w, step)
        pair = (rows, cols) if rows is not None and cols is not None else None
        out.append(pair if pair is not None and pair != (h, w) and works(*pair) else None)
    return out[0], out[1]


def _head_switch(graph: Graph, head: str | None) -> str:
    """How to leave out the head a failing node belongs to, if its `when:` is a plain variable."""
    spec = graph.net.spec
    when = spec.heads[head].when if spec is not None and head in spec.heads else None
    name = getattr(when, "name", None)
    return f" (`--set {name}=false` leaves out head '{head}')" if name else ""


def min_input(graph: Graph, input_shape: Shape | None = None, inference: bool = False) -> tuple[int, int] | None:
    """The smallest square H×W for which every shape rule holds, or None if none is found (see `search_min_input`)."""
    return search_min_input(graph, input_shape, inference)[0]


def search_min_input(graph: Graph, input_shape: Shape | None = None,
                     inference: bool = False) -> tuple[tuple[int, int] | None, int]:
    """The smallest square H×W for which every shape rule holds, and the largest size tried.

    With `inference=True` only the inference graph counts (training-only heads,
    such as an auxiliary classifier that needs a larger map, are left out).
    Sizes are tried upward from 1, so a network that is valid at some sizes and
    not at others (strides that disagree between branches) is handled exactly.
    Each try stops at the first node that fails; the search gives up past
    MAX_MIN_INPUT, or once the tries have visited MIN_INPUT_BUDGET nodes in all
    (a graph of 100,000 nodes that fails at its last node at every size would
    otherwise take minutes), so the size tried last is returned too.
    """
    shape = tuple(input_shape or graph.net.input_shape)
    if len(shape) != 3:
        return None, 0
    names = graph.eval_nodes() if inference else graph.order
    visited = 0
    for size in range(1, MAX_MIN_INPUT + 1):
        reached = len(_run(graph, (shape[0], size, size), None, names))
        if reached == len(names):
            return (size, size), size
        visited += reached
        if visited >= MIN_INPUT_BUDGET:
            return None, size
    return None, MAX_MIN_INPUT


def _probe_larger(graph: Graph, input_shape: Shape, tried: int) -> int | None:
    """A size above `tried` at which the network works, or None if MAX_MIN_INPUT does not.

    Bisects between `tried` (which fails) and MAX_MIN_INPUT as if validity were monotone, within
    MIN_INPUT_BUDGET node visits: the size returned works, smaller ones may too.
    """
    visited = 0

    def works(size: int) -> bool:
        nonlocal visited
        reached = len(_run(graph, (input_shape[0], size, size), None))
        visited += reached
        return reached == len(graph.order)

    low, high = tried, MAX_MIN_INPUT
    if not works(high):
        return None
    while high - low > 1 and visited < MIN_INPUT_BUDGET:
        mid = (low + high) // 2
        low, high = (low, mid) if works(mid) else (mid, high)
    return high
