"""Whether two specs are one graph, however written: same ops, attributes, edges, outputs and weight names.

Two specs can say the same thing in different words: another template name (`cbr`, `basic_conv2d`),
other parameter names, a block written in place. What they build is the same when the flat graphs of
primitive ops are: the same ops with the same attributes, reading the same inputs in the same order
(concat order matters), the same outputs and heads, and the same name for every node that owns weights
or buffers (its name is its `state_dict` key). The names of the other nodes are labels (`pool`,
`adaptive_avg_pool2d`) and do not count. An op that is a name for another op's call (`Op.same_as`:
`global_avgpool` is `adaptive_avgpool(1)`, `relu` is `act(relu)`) is that call, and a node that computes
nothing (`act(identity)`) is looked through: neither is a difference in the module built.

Nodes are matched by a Merkle-style key: a node with weights is keyed by its name; any other node by its op,
attributes and the keys of its inputs. Equal keys mean equal subgraphs up to the nearest weighted nodes, so a
difference is reported where it starts, not again at every node after it. The input's size is not part of the
graph (its channels are, through the parameter counts of the nodes with weights). Torch-free.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .infer import TypedGraph
from .ir import INPUT
from .ops import REGISTRY
from .ops.registry import named_call
from .summary import node_text

SHOWN = 3
"""Differences `summary` names before it counts the rest."""


@dataclass
class GraphEquality:
    """The verdict: `equal`, else the differences in words, where each starts first."""

    differences: list[str] = field(default_factory=list)
    nodes_a: set[str] = field(default_factory=set)
    """Nodes of A with no counterpart in B (a different op, attributes, inputs or weight name)."""
    nodes_b: set[str] = field(default_factory=set)

    @property
    def equal(self) -> bool:
        return not self.differences

    @property
    def count(self) -> int:
        """Distinct node paths that differ, on either side."""
        return len(self.nodes_a | self.nodes_b)

    def summary(self, shown: int = SHOWN) -> str:
        """`graph: equal`, or `graph: differs at 4 nodes: avgpool: ...; (+2 more)`."""
        if self.equal:
            return "graph: equal"
        items = self.differences[:shown]
        if len(self.differences) > shown:
            items.append(f"(+{len(self.differences) - shown} more)")
        where = f" at {self.count} node{'s' if self.count != 1 else ''}" if self.count else ""
        return f"graph: differs{where}: " + "; ".join(items)


class _Keys:
    """Small integers standing for node keys, shared by both graphs so that equal keys are equal subgraphs."""

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}
        self.attrs: dict[int, Any] = {}
        self.calls: dict[tuple[str, Any], tuple[str, Any]] = {}
        self.passing: dict[tuple[Any, ...], bool] = {}
        self.canonical: dict[tuple[int, Any], Any] = {}
        """`Op.canonical`'s forms, kept alive here: `attr_key` knows attributes by their `id`."""

    def of(self, key: Any) -> int:
        return self.ids.setdefault(key, len(self.ids))

    def attr_key(self, attrs: Any) -> Any:
        """Attributes as a dict key; nodes of one block instance share theirs, so each is worked out once."""
        found = self.attrs.get(id(attrs))
        if found is None:
            try:
                hash(attrs)
                found = (attrs,)
            except TypeError:
                found = (type(attrs).__name__, repr(attrs))
            self.attrs[id(attrs)] = found
        return found

    def through(self, typed: TypedGraph, name: str) -> bool:
        """`passes_through`, worked out once per op, attributes and input shape."""
        node = typed.net.nodes[name]
        key = (node.op, self.attr_key(node.attrs), tuple(typed.shape(s) for s in typed.graph.inputs[name]))
        found = self.passing.get(key)
        if found is None:
            found = self.passing[key] = passes_through(typed, name)
        return found

    def canonical_attrs(self, typed: TypedGraph, name: str) -> Any:
        """A node's attributes in the one form `Op.canonical` gives them at its input shapes."""
        node = typed.net.nodes[name]
        canonical = REGISTRY[node.op].canonical
        if canonical is None:
            return node.attrs
        ins = tuple(typed.shape(s) for s in typed.graph.inputs[name])
        key = (id(node.attrs), ins)
        if key not in self.canonical:
            self.canonical[key] = (node.attrs, canonical(node.attrs, list(ins)))  # the original kept alive too
        return self.canonical[key][1]

    def call(self, op: str, attrs: Any) -> tuple[str, Any]:
        """An op call as a key, under the name another op gives it if one does (`Op.same_as`): `global_avgpool`
        and `adaptive_avgpool(1)` build the same module."""
        key = (op, self.attr_key(attrs))
        found = self.calls.get(key)
        if found is None:
            plain = _computed(op, attrs)
            name = named_call(op, plain)
            found = self.calls[key] = (name, (REGISTRY[name].attrs(),)) if name is not None else (op, _hashable(plain))
        return found


def _computed(op: str, attrs: Any) -> Any:
    """The attributes that change what the op computes: those that only add a shape rule (`Op.checks_only`,
    conv's `exact`) at their defaults."""
    checks_only = REGISTRY[op].checks_only
    if not checks_only:
        return attrs
    fields = type(attrs).model_fields
    return attrs.model_copy(update={f: fields[f].default for f in checks_only})


def _hashable(attrs: Any) -> Any:
    try:
        hash(attrs)
        return (attrs,)
    except TypeError:
        return (type(attrs).__name__, repr(attrs))


def weighted(typed: TypedGraph, name: str) -> bool:
    """Whether a node owns parameters or buffers: then its name is a `state_dict` key."""
    if name == INPUT:
        return False
    node = typed.net.nodes[name]
    ins = [typed.shape(s) for s in typed.graph.inputs[name]]
    return typed.info[name].params > 0 or REGISTRY[node.op].buffer_bytes(node.attrs, ins) > 0


class _Constants:
    """What an op's source form is given (`ops.registry.SourceArgs`), for a node whose arguments are the values
    it has: enough to ask the op whether it computes anything there."""

    def __init__(self, attrs: Any, ins: list[Any]):
        self.attrs, self.ins = attrs, ins

    def arg(self, name: str) -> str:
        return repr(getattr(self.attrs, name))

    def value(self, name: str) -> Any:
        return getattr(self.attrs, name)

    def fixed(self, name: str) -> bool:
        return True

    def in_ch(self, i: int = 0) -> str:
        raise LookupError

    def expr(self, name: str) -> Any:
        raise LookupError

    def channels(self, i: int = 0) -> Any:
        raise LookupError


def passes_through(typed: TypedGraph, name: str) -> bool:
    """Whether a node computes nothing: its op's source form there is the identity (`act(identity)`,
    `flatten` of a flat input). Such a node is no op of the built module, so it is looked through."""
    node = typed.net.nodes[name]
    srcs = typed.graph.inputs[name]
    source = REGISTRY[node.op].source
    if source is None or len(srcs) != 1:
        return False
    try:
        return bool(source(_Constants(node.attrs, [typed.shape(srcs[0])])).identity)
    except Exception:  # noqa: BLE001 - a source form that needs more than constants: it computes something
        return False


def _read_keys(op: str, keys: list[int]) -> tuple[int, ...]:
    """The keys of what a node reads, in order; a commutative op's two in either order (`Op.commutative`)."""
    return tuple(sorted(keys)) if len(keys) == 2 and REGISTRY[op].commutative else tuple(keys)


class _Side:
    """One graph's keys: every node's, and the nodes with weights by name. A node that computes nothing has
    the key of what it reads."""

    def __init__(self, typed: TypedGraph, keys: _Keys):
        self.typed, self.keys = typed, keys
        self.key: dict[str, int] = {}
        self.weighted: dict[str, tuple[Any, ...]] = {}
        self.through: dict[str, str] = {}
        """A node that computes nothing, to the node whose value it passes on."""
        nodes, inputs = typed.net.nodes, typed.graph.inputs
        for name in typed.order:
            if name == INPUT:
                self.key[name] = keys.of((INPUT,))
                continue
            node = nodes[name]
            has_weights = weighted(typed, name)
            if not has_weights and keys.through(typed, name):
                src = inputs[name][0]
                self.key[name] = self.key[src]
                self.through[name] = self.through.get(src, src)
                continue
            reads = _read_keys(node.op, [self.key[s] for s in inputs[name]])
            own = (*self.call(name), node.train_only, reads)
            if has_weights:
                self.weighted[name] = (*own, typed.info[name].params)
                self.key[name] = keys.of(("weights", name))
            else:
                self.key[name] = keys.of(own)

    def call(self, name: str) -> tuple[str, Any]:
        """The node's op call as the comparison counts it (`_Keys.call` of its canonical attributes)."""
        node = self.typed.net.nodes[name]
        return self.keys.call(node.op, self.keys.canonical_attrs(self.typed, name))

    def reads(self, name: str) -> list[str]:
        """The nodes a node reads, each looked through to the node whose value it passes on."""
        return [self.through.get(s, s) for s in self.typed.graph.inputs[name]]

    def by_key(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = defaultdict(list)
        for name, key in self.key.items():
            if name not in self.weighted and name not in self.through and name != INPUT:
                out[key].append(name)
        return out


def _unpaired(mine: list[str], theirs: list[str]) -> list[str]:
    """Of nodes with one key, those the other side has no node for: same names pair first, then in order."""
    if len(mine) <= len(theirs):
        return []
    other = set(theirs)
    named = [n for n in mine if n in other]
    rest = [n for n in mine if n not in other]
    return rest[len(theirs) - len(named):]


def graph_equal(a: TypedGraph, b: TypedGraph) -> GraphEquality:
    """Compare the flat primitive graphs of A and B (see the module's docstring)."""
    keys = _Keys()
    sa, sb = _Side(a, keys), _Side(b, keys)
    out = GraphEquality()
    if a.input_shape[:1] != b.input_shape[:1]:
        out.differences.append(f"input channels {a.input_shape[0]} → {b.input_shape[0]}")

    for name in sa.weighted.keys() & sb.weighted.keys():
        if sa.weighted[name] != sb.weighted[name]:
            out.nodes_a.add(name)
            out.nodes_b.add(name)
    out.nodes_a |= sa.weighted.keys() - sb.weighted.keys()
    out.nodes_b |= sb.weighted.keys() - sa.weighted.keys()
    ka, kb = sa.by_key(), sb.by_key()
    for key in ka.keys() | kb.keys():
        out.nodes_a.update(_unpaired(ka.get(key, []), kb.get(key, [])))
        out.nodes_b.update(_unpaired(kb.get(key, []), ka.get(key, [])))

    out.differences += _node_differences(sa, sb, out)
    out.differences += _output_differences(sa, sb, out)
    return out


def _node_differences(sa: _Side, sb: _Side, out: GraphEquality) -> list[str]:
    """In words, each difference where it starts: nodes that differ while every node they read matches."""
    a, b = sa.typed, sb.typed
    roots_a = [n for n in a.order if n in out.nodes_a and not out.nodes_a.intersection(sa.reads(n))]
    roots_b = [n for n in b.order if n in out.nodes_b and not out.nodes_b.intersection(sb.reads(n))]
    said: set[str] = set()
    items: list[str] = []
    for name in roots_a:
        if name in out.nodes_b and name in b.net.nodes:
            items.append(_changed(sa, sb, name))
            said.add(name)
        else:
            items.append(f"{name} ({node_text(a, name)}) only in A")
    items += [f"{name} ({node_text(b, name)}) only in B" for name in roots_b if name not in said]
    after = out.count - len(set(roots_a) | set(roots_b))
    if after:
        items.append(f"{after} node{'s' if after != 1 else ''} after {'them' if len(items) > 1 else 'it'}")
    return items


def _changed(sa: _Side, sb: _Side, name: str) -> str:
    """One node that both sides have and that differs: what it computes, else what it reads."""
    a, b = sa.typed, sb.typed
    ta, tb = node_text(a, name), node_text(b, name)
    na, nb = a.net.nodes[name], b.net.nodes[name]
    if sa.call(name) != sb.call(name):  # as compared: aliases, canonical forms and shape rules counted as equal
        return f"{name}: {ta} → {tb}" if ta != tb or na.op != nb.op else f"{name}: {na.attrs!r} → {nb.attrs!r}"
    if na.train_only != nb.train_only:
        return f"{name}: training only {str(na.train_only).lower()} → {str(nb.train_only).lower()}"
    ins_a, ins_b = sa.reads(name), sb.reads(name)
    if _read_keys(na.op, [sa.key[s] for s in ins_a]) != _read_keys(nb.op, [sb.key[s] for s in ins_b]):
        return f"{name}: reads {', '.join(ins_a)} → {', '.join(ins_b)}"
    return f"{name}: {a.info[name].params:,} → {b.info[name].params:,} params"


def _output_differences(sa: _Side, sb: _Side, verdict: GraphEquality) -> list[str]:
    """Outputs and heads: the same names, reading the same nodes, training-only alike."""
    a, b = sa.typed.net, sb.typed.net
    items: list[str] = []
    for out in dict.fromkeys([*a.outputs, *b.outputs]):
        if out not in b.outputs:
            items.append(f"output {out} only in A")
        elif out not in a.outputs:
            items.append(f"output {out} only in B")
        elif sa.key[a.outputs[out]] != sb.key[b.outputs[out]] and a.outputs[out] not in verdict.nodes_a:
            items.append(f"output {out}: {a.outputs[out]} → {b.outputs[out]}")
        elif out in a.heads and out in b.heads and a.heads[out].train_only != b.heads[out].train_only:
            flag = {True: "training only", False: "always"}
            items.append(f"output {out}: {flag[a.heads[out].train_only]} → {flag[b.heads[out].train_only]}")
    return items
