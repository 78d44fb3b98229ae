"""Stage 2, validate: the layer grammar, names, blocks, heads and vars."""

from __future__ import annotations

import pytest

import archspec
from archspec.errors import SpecError
from archspec.spec import CallLayer, Construct, SeqLayer

HEAD = "archspec: 1\nname: t\ninput: [3, 8, 8]\n"


def spec(text: str, **vars):
    return archspec.loads(HEAD + text, "t.yaml", **vars)


def errors(text: str, **vars):
    with pytest.raises(SpecError) as info:
        spec(text, **vars)
    return info.value.diagnostics


def test_layer_forms():
    s = spec("body:\n  a: relu\n  b:\n    - relu\n    - {from: a, body: relu}\n  c: {concat: [relu, relu]}\n")
    assert isinstance(s.body, SeqLayer) and s.body.named
    a, b, c = s.body.items
    assert isinstance(a.layer, CallLayer)
    assert isinstance(b.layer, SeqLayer) and not b.layer.named
    assert isinstance(b.layer.items[1].layer, Construct) and b.layer.items[1].layer.from_[0].name == "a"
    assert isinstance(c.layer, Construct) and c.layer.kind == "concat"


def test_a_sequence_may_name_a_layer_repeat_or_add():
    s = spec("body:\n  stem: relu\n  repeat: {repeat: 2, body: relu}\n  add: relu\n")
    assert [i.name for i in s.body.items] == ["stem", "repeat", "add"]


def test_misspelt_construct_key_is_an_unknown_key_with_suggestion():
    (d,) = errors("body: {body: relu, repeats: 3}\n")
    assert d.code == "unknown-field" and d.hint == "did you mean 'repeat'?" and str(d.loc) == "t.yaml:4:20"


def test_construct_needs_exactly_one_kind():
    assert [d.code for d in errors("body: {body: relu, concat: [relu]}\n")] == ["bad-construct"]


@pytest.mark.parametrize("text, code", [
    ("body:\n  input: relu\n", "reserved-name"),
    ("body:\n  forward: relu\n", "reserved-name"),
    ("body:\n  _modules: relu\n", "reserved-name"),
    ("body:\n  typed: relu\n", "reserved-name"),
    ("body:\n  class: relu\n", "reserved-name"),  # a Python keyword: `self.class` would not compile
    ("body:\n  2x: relu\n", "bad-name"),
    ("blocks:\n  conv: {body: relu}\nbody: relu\n", "block-shadows-op"),
    ("blocks:\n  b: {params: [x=1, y], body: relu}\nbody: relu\n", "wrong-type"),
    ("blocks:\n  b: {params: [x, x], body: relu}\nbody: relu\n", "duplicate-name"),
    ("blocks:\n  b: [relu]\nbody: relu\n", "wrong-type"),
    ("blocks:\n  b: {from: x, body: relu}\nbody: relu\n", "unknown-field"),
    ("heads:\n  h: {body: relu}\nbody: relu\n", "missing-field"),
    ("body: 64\n", "wrong-type"),
    ("body: []\n", "empty"),
    ("body: relu\nexpect: {params: many}\n", "wrong-type"),
    ("body: relu\nvars: {w: $v}\n", "unknown-variable"),
])
def test_faults(text, code):
    assert code in [d.code for d in errors(text)]


def test_missing_top_level_keys():
    with pytest.raises(SpecError) as info:
        archspec.loads("archspec: 1\nname: t\n", "t.yaml")
    assert {d.message for d in info.value.diagnostics} == {"missing required key 'input'",
                                                           "missing required key 'body'"}


def test_vars_are_expressions_over_earlier_vars_and_can_be_overridden():
    s = spec("vars: {w: 16, w2: $w * 2, act: relu}\nbody: relu\n")
    assert s.vars == {"w": 16, "w2": 32, "act": "relu"}
    assert spec("vars: {w: 16}\nbody: relu\n", w=8).vars["w"] == 8
    assert spec("body: relu\n", input=[1, 28, 28]).input == (1, 28, 28)


def test_override_of_undeclared_variable_and_bad_input():
    (d,) = errors("vars: {width: 1}\nbody: relu\n", widht=2)
    assert d.code == "unknown-variable" and d.hint == "did you mean 'width'?"
    (d,) = errors("body: relu\n", input=[3, 0, 8])
    assert d.code == "wrong-type"


def test_flow_list_comma_pitfall_has_a_hint():
    diags = errors("body: [conv(8, 3), conv(8, 3, p=1)]\n")
    assert any("every comma splits an item" in (d.hint or "") for d in diags)
    diags = errors("body: {body: conv(8, 3)}\n")
    assert any("quote the call" in (d.hint or "") for d in diags)


def test_reserved_names_are_exactly_what_collides():
    """A node named like an attribute of the module (`register_forward_hook`, `typed`) would break it; other
    names (`heads`, torchvision's ViT classifier) are free. Keywords and `input` are reserved for their own reasons."""
    import keyword

    import archspec
    from archspec.backends.torch_fx import ArchModule
    from archspec.validate import RESERVED_NAMES

    model = archspec.build(spec("body: conv(4, 1)\n"), device="meta")
    attributes = {n for n in [*dir(ArchModule), *vars(model)] if not n.startswith("_")}
    assert RESERVED_NAMES == attributes | set(keyword.kwlist) | {"input"}
    assert "heads" not in RESERVED_NAMES


@pytest.mark.parametrize("name", ["class", "lambda", "None"])
def test_a_keyword_really_breaks_fx_code(name):
    """Why keywords are reserved: torch.fx writes `self.<name>` in the generated forward."""
    import torch
    from torch import fx, nn

    root = nn.Module()
    root.add_module(name, nn.ReLU())
    graph = fx.Graph()
    graph.output(graph.create_node("call_module", name, (graph.placeholder("x"),), {}))
    with pytest.raises(SyntaxError):
        fx.GraphModule(root, graph)(torch.zeros(1))


def test_the_language_module_imports_no_stage_after_it():
    """spec.py defines the language; validate.py builds a Spec from it (no cycle between the two)."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(archspec.__file__).parent / "spec.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not imported & {"validate", "expand", "graph", "infer", "pipeline", "check"}


def test_errors_md_lists_exactly_the_reserved_attributes():
    import keyword
    import re
    from pathlib import Path

    from archspec.validate import RESERVED_NAMES

    text = (Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("Reserved names"))
    listed = set(re.findall(r"`([A-Za-z0-9_]+)`", line.split("attributes of the built module:")[1]))
    assert listed == {n for n in RESERVED_NAMES if not keyword.iskeyword(n) and n != "input"}
