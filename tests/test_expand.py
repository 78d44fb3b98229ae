"""Stage 3, expand: names, blocks, arguments, repeat, references and traces."""

from __future__ import annotations

import pytest

import archspec
from archspec.errors import SpecError
from archspec.expand import expand

HEAD = "archspec: 1\nname: t\ninput: [3, 16, 16]\n"
CBR = """
blocks:
  cbr:
    params: [out, k=1, s=1, p=$k // 2]
    body:
      conv: conv($out, $k, s=$s, p=$p, bias=false)
      bn: bn
      relu: relu
"""


def net(text: str, **vars):
    return expand(archspec.loads(HEAD + CBR + text, "t.yaml", **vars))


def test_names_follow_scopes_and_indices():
    n = net("body:\n  a: cbr(8, 3)\n  b:\n    - cbr(8)\n    - maxpool(2)\n")
    assert list(n.nodes) == ["input", "a/conv", "a/bn", "a/relu", "b/0/conv", "b/0/bn", "b/0/relu", "b/1"]
    assert n.nodes["b/0/conv"].inputs == ["a/relu"]
    assert n.nodes["a/conv"].attrs.p == (1, 1)  # default computed from an earlier parameter
    assert n.scopes["a"].kind == "block" and n.scopes["a"].args == {"out": 8, "k": 3, "s": 1, "p": 1}
    assert n.scopes["a"].label() == "cbr(8, 3, 1, 1)"


def test_keyword_arguments_and_aliases():
    n = net("body:\n  a: cbr(out=4, k=3, s=2)\n  b: conv(4, kernel=[1, 3], padding=[0, 1])\n")
    assert n.nodes["a/conv"].attrs.s == (2, 2)
    assert n.nodes["b"].attrs.k == (1, 3) and n.nodes["b"].attrs.p == (0, 1)


def test_concat_branches_read_the_same_input_in_written_order():
    n = net("body:\n  stem: cbr(4)\n  mix:\n    concat:\n      z: cbr(2)\n      a: ['maxpool(3, s=1, p=1)', cbr(3)]\n")
    assert n.nodes["mix/z/conv"].inputs == ["stem/relu"] and n.nodes["mix/a/0"].inputs == ["stem/relu"]
    assert n.nodes["mix"].op == "concat" and n.nodes["mix"].inputs == ["mix/z/relu", "mix/a/1/relu"]
    assert n.outputs["main"] == "mix"


def test_repeat_unrolls_with_index_names():
    n = net("body:\n  stem: cbr(4)\n  stage: {repeat: 3, body: 'cbr(4, 3)'}\n")
    assert [p for p in n.scopes if p.startswith("stage/")] == ["stage/0", "stage/1", "stage/2"]
    assert n.scopes["stage"].repeat == 3 and n.nodes["stage/1/conv"].inputs == ["stage/0/relu"]


def test_the_same_call_is_worked_out_once_but_each_node_keeps_its_own_place_and_shape():
    """Equal calls with equal values share one attributes object (and inference works them out once per
    input shape); names, traces, shapes and counts stay those of each node."""
    body = "body:\n  a: cbr(4, 3)\n  b: cbr(4, 3)\n  c: cbr(8, 3)\n  d: {repeat: 2, body: 'cbr(4, 3)'}\n"
    typed = archspec.compile(archspec.loads(HEAD + CBR + body, "t.yaml"))
    nodes = typed.net.nodes
    assert nodes["a/conv"].attrs is nodes["b/conv"].attrs is nodes["d/1/conv"].attrs
    assert nodes["c/conv"].attrs.out == 8 and nodes["a/conv"].loc != nodes["b/conv"].loc
    assert [typed.info[f"{n}/conv"].params for n in ("a", "b", "c", "d/0", "d/1")] == [108, 144, 288, 288, 144]
    assert typed.shape("c/relu") == (8, 16, 16) and typed.shape("d/1/relu") == (4, 16, 16)


def test_references_stay_symbolic_until_the_graph_stage():
    n = net("body:\n  a: cbr(4)\n  b: {from: input, body: cbr(4)}\n  c: add(a, b)\n")
    (ref,) = n.nodes["b/conv"].inputs
    assert ref.name == "input" and ref.scope == "" and str(ref.loc) == "t.yaml:14:13"
    assert [r.name for r in n.nodes["c"].inputs] == ["a", "b"]


def test_trace_goes_from_the_users_line_to_the_template_line():
    n = net("body:\n  a: cbr(4)\n")
    node = n.nodes["a/conv"]
    assert [str(loc) for loc in node.trace] == ["t.yaml:13:6", "t.yaml:9:13"]
    assert node.loc == node.trace[0] and node.origin == node.trace[-1]


def test_heads_are_marked_training_only():
    n = net("body:\n  a: cbr(4)\n  b: global_avgpool\nheads:\n  h: {from: a, train_only: true, loss_weight: 0.3,"
            " body: global_avgpool}\n")
    assert n.nodes["h"].train_only and n.nodes["h"].head == "h" and not n.nodes["a/conv"].train_only
    assert n.loss_weights() == {"main": 1.0, "h": 0.3}
    assert n.output_names(training=False) == ["main"] and n.output_names(training=True) == ["main", "h"]


def test_head_when_leaves_a_head_out():
    text = ("vars: {aux: true}\nbody:\n  a: cbr(4)\nheads:\n  h: {from: a, when: $aux, train_only: true,"
            " body: global_avgpool}\n")
    assert "h" in net(text).heads
    off = net(text, aux=False)
    assert "h" not in off.heads and "h" not in off.nodes and list(off.outputs) == ["main"]
    with pytest.raises(SpecError) as info:
        net(text, aux=3)
    assert [d.code for d in info.value.diagnostics] == ["wrong-type"]


def test_head_name_clash_with_body():
    with pytest.raises(SpecError) as info:
        net("body:\n  a: cbr(4)\nheads:\n  a: {from: a, body: relu}\n")
    assert [d.code for d in info.value.diagnostics] == ["duplicate-name"]


@pytest.mark.parametrize("body, code", [
    ("a: cbr(4, s=1, q=2)", "unknown-argument"),
    ("a: cbr(4, 1, 1, 0, 9)", "too-many-arguments"),
    ("a: cbr(out=4, 4)", "bad-expression"),
    ("a: cbr(4, out=4)", "duplicate-argument"),
    ("a: conv(4, 3, 1, 0, 1, 1, true, false, 9)", "too-many-arguments"),
    ("a: conv(0, 3)", "bad-argument"),
    ("a: conv(4, [1, 2, 3])", "bad-argument"),
    ("a: maxpool(3, ceil=maybe)", "bad-argument"),
    ("a: {repeat: 0, body: relu}", "wrong-type"),
    ("a: {repeat: 100000000, body: relu}", "wrong-type"),
    ("a: concat(1, 2)", "bad-reference"),
    ("a: {from: [input, input], body: relu}", "wrong-arity"),
])
def test_call_faults(body, code):
    with pytest.raises(SpecError) as info:
        net(f"body:\n  {body}\n")
    assert code in [d.code for d in info.value.diagnostics]


def test_mutually_recursive_blocks_are_refused():
    text = "blocks:\n  a: {body: b}\n  b: {body: a}\nbody: a\n"
    with pytest.raises(SpecError) as info:
        expand(archspec.loads(HEAD + text, "t.yaml"))
    (d,) = info.value.diagnostics
    assert d.code == "recursive-block" and d.message == "block 'a' uses itself (a → b → a)"


def test_expansion_size_is_bounded():
    text = ("blocks:\n  b1: {repeat: 1000, body: relu}\n  b2: {repeat: 1000, body: b1}\nbody: b2\n")
    with pytest.raises(SpecError) as info:
        expand(archspec.loads(HEAD + text, "t.yaml"))
    assert [d.code for d in info.value.diagnostics] == ["too-large"]
