"""Stage 4, graph, and an IR verifier run over every spec in specs/."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

import archspec
from archspec.errors import SpecError
from archspec.expand import expand
from archspec.graph import Graph, build_graph
from archspec.ir import INPUT
from archspec.ops import REGISTRY

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.yaml"))
HEAD = "archspec: 1\nname: t\ninput: [3, 16, 16]\n"


def graph(text: str) -> Graph:
    return build_graph(expand(archspec.loads(HEAD + text, "t.yaml")))


def verify(g: Graph) -> None:
    """Well-formedness of a graph: a DAG over unique names, arity, edge slots, order."""
    net = g.net
    assert nx.is_directed_acyclic_graph(g.g)
    assert set(g.g.nodes) == set(net.nodes) and len(g.order) == len(net.nodes) == len(set(g.order))
    position = {n: i for i, n in enumerate(g.order)}
    for name, node in net.nodes.items():
        if name == INPUT:
            assert g.inputs[name] == []
            continue
        arity = REGISTRY[node.op].arity
        assert len(g.inputs[name]) >= 1 and (arity is None or len(g.inputs[name]) == arity), name
        for slot, src in enumerate(g.inputs[name]):
            assert slot in g.g.edges[src, name]["slots"] and position[src] < position[name]
    assert set(net.outputs.values()) <= set(net.nodes)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_spec_graph_is_well_formed_and_deterministic(path):
    g = build_graph(expand(archspec.load(path)))
    verify(g)
    assert build_graph(expand(archspec.load(path))).order == g.order


def test_references_resolve_outward_and_through_block_inputs():
    g = graph("blocks:\n  res:\n    body:\n      a: relu\n      b: {from: input, body: relu}\n      out: add(a, b)\n"
              "body:\n  stem: conv(4, 1)\n  r: res\n  tail: {from: stem, body: relu}\n  sum: add(tail, r)\n")
    verify(g)
    assert g.inputs["r/b"] == ["stem"] and g.inputs["r/out"] == ["r/a", "r/b"]
    assert g.inputs["tail"] == ["stem"] and g.inputs["sum"] == ["tail", "r/out"]


def test_paths_reach_inside_blocks():
    g = graph("body:\n  m: {concat: {x: 'conv(2, 1)', y: 'conv(2, 1)'}}\n  t: {from: m/y, body: relu}\n"
              "  s: concat(m, t)\n")
    assert g.inputs["t"] == ["m/y"]


def test_the_same_input_twice_keeps_both_slots():
    g = graph("body:\n  a: relu\n  b: add(a, a)\n")
    assert g.inputs["b"] == ["a", "a"] and g.g.edges["a", "b"]["slots"] == [0, 1]


def test_order_follows_the_spec_where_the_graph_allows():
    g = graph("body:\n  m: {concat: {z: relu, a: relu, k: relu}}\n")
    assert g.order == ["input", "m/z", "m/a", "m/k", "m"]


@pytest.mark.parametrize("body, code", [
    ("a: relu\n  b: {from: nowhere, body: relu}", "unknown-reference"),
    ("a: {from: b, body: relu}\n  b: relu", "cycle"),
    ("a: {from: a, body: relu}", "cycle"),
    ("a: relu\n  b: {from: input, body: relu}", "unused-node"),
])
def test_graph_faults(body, code):
    with pytest.raises(SpecError) as info:
        graph(f"body:\n  {body}\n")
    assert [d.code for d in info.value.diagnostics] == [code]


def test_inference_node_may_not_read_a_training_only_head():
    with pytest.raises(SpecError) as info:
        graph("body:\n  a: relu\n  b: {from: h, body: relu}\n  c: add(a, b)\n"
              "heads:\n  h: {from: a, train_only: true, body: relu}\n")
    assert "train-only-input" in [d.code for d in info.value.diagnostics]
