"""What a diagram shows, decided before any graphviz: boxes, clusters and edges.

A *unit* is a scope of kind block, head or repeat; units are what `depth`
counts and what becomes a cluster. Sequences and merges are transparent: their
ops sit directly in the nearest enclosing unit's cluster. Top-level units are
at level 1; `depth=N` draws N levels, so a unit at level N is *collapsed*:
every node inside it maps to one box (depth 0 draws like 1). With `focus`, the
focused scope is drawn open and levels count from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import did_you_mean
from ..infer import TypedGraph
from ..ir import INPUT, Scope, parent, written_call
from ..ops import REGISTRY
from ..ops.common import fmt_shape

UNIT_KINDS = ("block", "head", "repeat")


class DrawError(Exception):
    """A diagram cannot be drawn or written; the message says why and what to do."""


@dataclass(frozen=True)
class Box:
    """One drawn node. `kind` is an op kind, or 'block', 'input' or 'output'."""

    id: str
    kind: str
    title: str
    lines: tuple[str, ...] = ()
    dashed: bool = False
    tooltip: str = ""
    spine: bool = False
    """Outside every cluster and on the main network: drawn on one straight line where possible."""


@dataclass
class Cluster:
    """An expanded unit: a titled frame around its boxes and sub-clusters."""

    id: str
    title: str
    note: str
    dashed: bool
    items: list[str | Cluster] = field(default_factory=list)


@dataclass(frozen=True)
class Edge:
    tail: str
    head: str
    label: str
    dashed: bool = False


@dataclass
class View:
    """A diagram's content, in a deterministic order; `top` holds the outermost items."""

    title: str
    note: str
    boxes: dict[str, Box]
    top: list[str | Cluster]
    edges: list[Edge]


def build_view(typed: TypedGraph, depth: int | None = None, heads: bool = True, focus: str | None = None) -> View:
    """Decide every box, cluster and edge of a diagram of `typed` (see the module docstring)."""
    return _Builder(typed, depth, heads, focus).run()


class _Builder:
    def __init__(self, typed: TypedGraph, depth: int | None, heads: bool, focus: str | None):
        self.typed, self.net = typed, typed.net
        self.depth = depth
        self.root = _check_focus(typed, focus) if focus else ""
        self.nodes = [n for n in typed.order if self._keep(n, heads)]
        self.boxes: dict[str, Box] = {}
        self.clusters: dict[str, Cluster] = {}
        self.top: list[str | Cluster] = []
        self.home: dict[str, list[str | Cluster]] = {}
        self.visible: dict[str, str] = {}

    def _keep(self, name: str, heads: bool) -> bool:
        if self.root:
            return name == self.root or name.startswith(self.root + "/")
        return heads or self.net.nodes[name].head is None

    def run(self) -> View:
        self.visible = {n: self._place(n) for n in self.nodes}
        edges = self._edges()
        title = f"{self.net.name}: {self.root}" if self.root else self.net.name
        return View(title, self._note(), self.boxes, self.top, edges)

    def _note(self) -> str:
        """Totals of the whole network: params (all, and without training-only heads) and MACs."""
        if self.root:
            return ""
        t = self.typed
        params, inference = t.total("params"), t.total("params", inference=True)
        extra = f" ({inference:,} without training-only heads)" if inference != params else ""
        return f"{params:,} params{extra} · {t.total('macs', inference=True):,} MACs"

    # -- boxes and clusters --------------------------------------------------
    def _place(self, name: str) -> str:
        """Add the box that shows node `name` (its own, or its collapsed unit's); return the box id."""
        units = self._units(name if name in self.net.scopes else parent(name))
        collapsed = next((u for u in units if self._collapsed(u, units)), None)
        if collapsed is not None:
            open_units = units[: units.index(collapsed)]
            box = self._unit_box(collapsed, open_units[-1].path if open_units else self.root)
        else:
            box, open_units = self._op_box(name), units
        if box.id not in self.boxes:
            self._add(box, self._container(open_units), main=self.net.nodes[name].head is None)
        return box.id

    def _add(self, box: Box, items: list[str | Cluster], at: int | None = None, main: bool = False) -> None:
        """Put `box` into a cluster's `items`; on the spine if it is on the main path outside every cluster."""
        if items is self.top and main and not self.root:
            box = replace(box, spine=True)
        self.boxes[box.id] = box
        self.home[box.id] = items
        items.insert(len(items) if at is None else at, box.id)

    def _units(self, path: str) -> list[Scope]:
        """The units enclosing scope `path` (itself included), outermost first, up to the drawing's root."""
        scopes = self.net.scopes
        chain: list[Scope] = []
        while path and path in scopes:
            if scopes[path].kind in UNIT_KINDS:
                chain.append(scopes[path])
            if path == self.root:
                break
            path = parent(path)
        return chain[::-1]

    def _collapsed(self, unit: Scope, units: list[Scope]) -> bool:
        if self.depth is None or unit.path == self.root:
            return False
        level = units.index(unit) + (units[0].path != self.root)  # the top-level blocks are at level 1
        return level >= max(self.depth, 1)

    def _container(self, units: list[Scope]) -> list[str | Cluster]:
        """The item list of the innermost cluster of `units`, creating clusters on the way."""
        items, outer = self.top, self.root
        for unit in units:
            if unit.path not in self.clusters:
                cluster = self._cluster(unit, outer)
                self.clusters[unit.path] = cluster
                items.append(cluster)
            items, outer = self.clusters[unit.path].items, unit.path
        return items

    def _cluster(self, unit: Scope, outer: str) -> Cluster:
        name = _relative(unit.path, outer)
        label = self._label(unit, name)
        params = self.typed.scope_total(unit.path, "params")
        note = f"{params:,} params" + (" · training only" if self.net.train_only(unit) else "")
        return Cluster(f"cluster_{unit.path}", f"{name}: {label}" if label else name, note, self.net.train_only(unit))

    def _unit_box(self, unit: Scope, outer: str) -> Box:
        name = _relative(unit.path, outer)
        shape = self._shape(unit.output) if unit.output else "?"
        params = self.typed.scope_total(unit.path, "params")
        lines = (self._label(unit, name), f"{shape} · {params:,} params")
        return Box(f"block.{unit.path}", "block", name, lines, self.net.train_only(unit), unit.path)

    def _op_box(self, name: str) -> Box:
        node = self.net.nodes[name]
        if name == INPUT:
            return Box(INPUT, "input", "input", (self._shape(INPUT),), tooltip=INPUT)
        op = REGISTRY[node.op]
        return Box(name, op.kind, op.describe(node.attrs), (), node.train_only, name)

    def _label(self, unit: Scope, name: str) -> str:
        """The unit's call as the spec writes it (`cbr(64, 1)`, `block35(0.17) ×10`), or its kind; '' when it
        only repeats the name (`mixed_5b: mixed_5b()`)."""
        label = self.net.describe(unit)
        if unit.block is not None:
            label = written_call(unit)
        elif unit.kind == "repeat" and unit.children and (first := self.net.scopes.get(unit.children[0])) \
                and first.block is not None:
            label = f"{written_call(first)} ×{unit.repeat}"
        return "" if label in (name, f"{name}()") else label

    def _shape(self, name: str) -> str:
        return fmt_shape(self.typed.info[name].shape)

    # -- edges ---------------------------------------------------------------
    def _edges(self) -> list[Edge]:
        """One edge per pair of distinct boxes, labelled with the shape of the tensor it carries."""
        visible = self.visible
        edges: dict[tuple[str, str], Edge] = {}
        for name in self.nodes:
            head, dashed = visible[name], self.net.nodes[name].train_only
            for src in self.typed.graph.inputs[name]:
                tail = visible.get(src) or self._outside_input(src)
                if tail != head and (tail, head) not in edges:
                    edges[tail, head] = Edge(tail, head, self._shape(src), dashed)
        for box, out in self._outputs():
            edges[visible[out], box.id] = Edge(visible[out], box.id, self._shape(out), box.dashed)
        return self._split_fanouts(list(edges.values()))

    def _split_fanouts(self, edges: list[Edge]) -> list[Edge]:
        """Route a tensor read by several boxes through one split point, so its shape is written once."""
        fanout: dict[str, list[Edge]] = {}
        for e in edges:
            fanout.setdefault(e.tail, []).append(e)
        out: list[Edge] = []
        for tail, group in fanout.items():
            if len(group) == 1:
                out += group
                continue
            split = Box(f"split.{tail}", "split", "", dashed=all(e.dashed for e in group))
            self._add(split, self.home[tail], at=self.home[tail].index(tail) + 1, main=self.boxes[tail].spine)
            out.append(Edge(tail, split.id, group[0].label, split.dashed))
            out += [Edge(split.id, e.head, "", e.dashed) for e in group]
        return out

    def _outside_input(self, src: str) -> str:
        """In a focused view, a box standing for a tensor that enters the scope from outside."""
        box = Box(f"input.{src}", "input", src, (self._shape(src),), tooltip=src)
        if box.id not in self.boxes:
            self._add(box, self.top, at=sum(b.startswith("input.") for b in self.boxes))
        return box.id

    def _outputs(self) -> list[tuple[Box, str]]:
        """A marker box per output drawn (main and heads, or the focused scope's), with its node."""
        if self.root:
            out = self.net.scopes[self.root].output or ""
            pairs = [(Box("output.", "output", "output", (self._shape(out),), tooltip=out), out)]
        else:
            kept = set(self.nodes)
            pairs = [(self._head_output(key, out), out) for key, out in self.net.outputs.items() if out in kept]
        for box, _ in pairs:
            self._add(box, self.top, main=box.id == "output.main")
        return [(box, out) for box, out in pairs if out in self.visible]

    def _head_output(self, key: str, out: str) -> Box:
        head = self.net.heads.get(key)
        if key == "main" or head is None:
            return Box("output.main", "output", "output", (self._shape(out),), tooltip=out)
        lines = (self._shape(out),) + (("training only",) if head.train_only else ())
        return Box(f"output.{key}", "output", f"{key} output", lines, head.train_only, out)


def _relative(path: str, outer: str) -> str:
    return path[len(outer) + 1:] if outer and path.startswith(outer + "/") else path


def _check_focus(typed: TypedGraph, focus: str) -> str:
    scopes = typed.net.scopes
    if focus in scopes and focus and scopes[focus].output is not None:
        return focus
    names = [p for p, s in scopes.items() if p and s.kind in UNIT_KINDS]
    hint = did_you_mean(focus, names) or f"blocks: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''}"
    raise DrawError(f"no block or head named '{focus}' in {typed.net.name}; {hint}")
