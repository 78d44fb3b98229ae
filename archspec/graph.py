"""Stage 4, graph: resolve references and build the `networkx.DiGraph` of ops.

An edge `u -> v` carries `slots`, the input positions of `v` that `u` feeds, so
concat order is explicit. The topological order is deterministic: among ready
nodes, the one written first in the spec goes first. Unknown references,
cycles, unused nodes and inference nodes that read training-only heads are
reported here, with the locations of the lines at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import cast

import networkx as nx

from .errors import Diagnostics, did_you_mean
from .ir import INPUT, Network, Ref, Source, join, parent


@dataclass
class Graph:
    """A network with resolved inputs, in a deterministic order; `g` is it as a DiGraph."""

    net: Network
    order: list[str]
    inputs: dict[str, list[str]]

    @cached_property
    def g(self) -> nx.DiGraph:
        """The network as a `networkx.DiGraph`, built when first asked for (the stages need it only for
        a spec whose order is not the written one)."""
        return _digraph(self.net, self.inputs)

    def eval_nodes(self) -> list[str]:
        """Nodes of the inference graph (training-only heads left out), in order."""
        nodes = self.net.nodes
        return [n for n in self.order if not nodes[n].train_only]


def build_graph(net: Network) -> Graph:
    """Resolve references and order the nodes; raises SpecError on faults."""
    diags = Diagnostics()
    resolver = Resolver(net, diags)
    inputs = {name: resolver.sources(node.inputs) for name, node in net.nodes.items()}
    diags.raise_if_errors(net.sources)
    graph = Graph(net, _written_order(inputs), inputs)
    if not graph.order:  # some node reads a later one: networkx finds the cycle or the order
        _check_cycles(net, graph.g, diags)
        diags.raise_if_errors(net.sources)
        index = {name: i for i, name in enumerate(net.nodes)}
        graph.order = list(nx.lexicographical_topological_sort(graph.g, key=lambda n: index[n]))
    _check_unused(net, inputs, diags)
    _check_train_only(net, inputs, diags)
    diags.raise_if_errors(net.sources)
    return graph


def _written_order(inputs: dict[str, list[str]]) -> list[str]:
    """The nodes as written, if every node reads only nodes written before it; else [].

    Then the written order is the deterministic topological order (among ready nodes the one
    written first goes first: the first node not yet placed is always ready), and there is no cycle.
    """
    seen: set[str] = set()
    for name, srcs in inputs.items():
        if not seen.issuperset(srcs):
            return []
        seen.add(name)
    return list(inputs)


def _digraph(net: Network, inputs: dict[str, list[str]]) -> nx.DiGraph:
    """Edge `u -> v` carries `slots`, the input positions of `v` that `u` feeds."""
    slots: dict[tuple[str, str], list[int]] = {}
    for name, srcs in inputs.items():
        for slot, src in enumerate(srcs):
            slots.setdefault((src, name), []).append(slot)
    g = nx.DiGraph()
    g.add_nodes_from(net.nodes)
    g.add_edges_from((u, v, {"slots": s}) for (u, v), s in slots.items())
    return g


class Resolver:
    """Resolves references by the scoping rules of the language; expand uses it too, on the nodes made so far."""

    def __init__(self, net: Network, diags: Diagnostics):
        self.net, self.diags = net, diags

    def sources(self, srcs: list[Source]) -> list[str]:
        """The node names a node reads, those that resolve."""
        for src in srcs:
            if not isinstance(src, str):
                break
        else:  # names only, as most nodes read: the list is shared, not copied (no stage mutates it)
            return cast("list[str]", srcs)
        resolved = [s if isinstance(s, str) else self.source(s) for s in srcs]
        return [s for s in resolved if s is not None]

    def source(self, src: Source, depth: int = 0) -> str | None:
        if isinstance(src, str):
            return src
        if depth > 64:
            return None
        return self.ref(src, depth)

    def ref(self, ref: Ref, depth: int) -> str | None:
        scope = ref.scope
        while True:
            if ref.name == INPUT:
                return self.scope_input(scope, ref, depth)
            path = join(scope, ref.name)
            target = self.net.output_of(path)
            if target is not None:
                return target
            if path in self.net.aliases:  # an absent layer: what it would have read
                return self.passed(self.net.aliases[path], ref, depth)
            if not scope:
                break
            scope = parent(scope)
        self.unknown(ref)
        return None

    def passed(self, src: Source | list[Source] | None, ref: Ref, depth: int) -> str | None:
        if isinstance(src, list):
            self.diags.error("bad-reference", f"'{ref.name}' is absent (its `when:` is false) and reads several "
                             "inputs: which one it stands for is ambiguous", loc=ref.loc,
                             hint="name the input you mean")
            return None
        return self.source(src, depth + 1) if src is not None else None

    def scope_input(self, scope: str, ref: Ref, depth: int) -> str | None:
        s = self.net.scopes.get(scope)
        inp = s.input if s else None
        while s is not None and inp is None and s.path:
            s = self.net.scopes.get(parent(s.path))
            inp = s.input if s else None
        if isinstance(inp, list):
            self.diags.error("bad-reference", "`input` is ambiguous here: this scope reads several inputs",
                             loc=ref.loc, hint="name the input you mean")
            return None
        return self.source(inp, depth + 1) if inp is not None else None

    def unknown(self, ref: Ref) -> None:
        visible = _visible_names(self.net, ref.scope)
        self.diags.error("unknown-reference", f"no node named '{ref.name}' is visible here", loc=ref.loc,
                         path=ref.scope or None, found=ref.name,
                         hint=did_you_mean(ref.name, visible) or _nearby(visible))


def _visible_names(net: Network, scope: str) -> list[str]:
    names: set[str] = {INPUT}
    while True:
        prefix = f"{scope}/" if scope else ""
        for path in list(net.scopes) + list(net.nodes) + list(net.aliases):
            if path.startswith(prefix) and path != scope and "/" not in path[len(prefix):]:
                names.add(path[len(prefix):])
        if not scope:
            return sorted(names)
        scope = parent(scope)


def _nearby(names: list[str]) -> str:
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return f"names visible here: {shown}"


def _check_cycles(net: Network, g: nx.DiGraph, diags: Diagnostics) -> None:
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return
    names = [u for u, _ in cycle]
    node = net.nodes[names[0]]
    loc = next((r.loc for n in names for r in net.nodes[n].inputs if isinstance(r, Ref)), node.loc)
    diags.error("cycle", "the graph has a cycle: " + " → ".join(names + [names[0]]), loc=loc, path=names[0],
                hint="a `from:` or merge argument refers to a node that depends on it")


def _check_unused(net: Network, inputs: dict[str, list[str]], diags: Diagnostics) -> None:
    used = set(net.outputs.values()).union(*inputs.values())
    for name in [n for n in net.nodes if n not in used and n != INPUT]:
        node = net.nodes[name]
        notes = [(node.loc, "in the block used here")] if node.loc and node.loc != node.origin else []
        diags.error("unused-node", f"the output of '{name}' is never used", loc=node.origin, path=name,
                    notes=notes, hint="merge it into a concat/add, make it a head, or delete it")


def _check_train_only(net: Network, inputs: dict[str, list[str]], diags: Diagnostics) -> None:
    train = {name for name, node in net.nodes.items() if node.train_only}
    if not train:
        return
    for name, node in net.nodes.items():
        if node.train_only:
            continue
        for src in inputs[name]:
            if src in train:
                diags.error("train-only-input", f"'{name}' reads '{src}', which exists only in training",
                            loc=node.loc, path=name, hint="read it from the main network instead")


__all__ = ["Graph", "Resolver", "build_graph"]
