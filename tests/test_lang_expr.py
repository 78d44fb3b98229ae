"""The expression language's comparisons, logic, conditionals, indexing, fields and functions."""

from __future__ import annotations

import pytest

import archspec
from archspec.errors import SpecError
from archspec.expr import MAX_DEPTH, ExprError, Shape, evaluate, make_divisible, parse_expr

ENV = {"c": 64, "s": 2, "t": True, "cfg": [16, 24, [3, 5]], "depths": {"r18": [2, 2, 2, 2], "r50": [3, 4, 6, 3]},
       "v": "r50", "in": Shape((32, 14, 7)), "flat": Shape((10,))}


@pytest.mark.parametrize("text, value", [
    ("$c == 64", True), ("$c != 64", False), ("$c < 65", True), ("$c <= 63", False), ("$s > 1", True),
    ("$s >= 3", False), ("$s != 1 or $c != 64", True), ("$s == 1 and $c == 64", False), ("not $t", False),
    ("not $s == 1", True), ("1 if $s == 2 else 0", 1), ("$s if $i == 0 else 1", 2),
    ("'a' if false else 'b' if true else 'c'", "b"), ("$cfg[1]", 24), ("$cfg[-1][0]", 3), ("$cfg[2][1] * 2", 10),
    ("$depths[$v]", [3, 4, 6, 3]), ("$depths[r18][3]", 2), ("$depths.r50[0]", 3), ("$in.c", 32), ("$in.h", 14),
    ("$in.w", 7), ("$in[0]", 32), ("$flat.f", 10), ("len($cfg)", 3), ("len($depths)", 2), ("sum($depths[$v])", 16),
    ("abs(-3)", 3), ("max($cfg[0], 20)", 20), ("max([1, 5, 2])", 5), ("make_divisible(32 * 0.75, 8)", 24),
    ("make_divisible(10, 8)", 16), ("make_divisible(3, 8, min_value=4)", 4), ("$c == 64.0", True),
    ("true == 1", False), ("sum($depths[$v][:2])", 7), ("$cfg[1:]", [24, [3, 5]]), ("$cfg[:-1]", [16, 24]),
    ("$cfg[0:1]", [16]), ("[1, 2] == [1, 2]", True), ("$v == r50", True), ("1 < 2 and 2 < 3 or false", True),
])
def test_evaluate(text, value):
    assert evaluate(parse_expr(text), {**ENV, "i": 0}) == value


def test_make_divisible_is_torchvisions_rounding():
    from torchvision.models._utils import _make_divisible

    for v in [1, 3, 7.5, 8, 12, 16 * 0.35, 24 * 1.4, 30.1, 96 * 0.5, 1280 * 0.75, 33, 100, 1000.4]:
        for divisor in (1, 4, 8, 16):
            assert make_divisible(v, divisor) == _make_divisible(v, divisor), (v, divisor)
            assert make_divisible(v, divisor, min_value=2) == _make_divisible(v, divisor, 2)


def test_lazy_evaluation_skips_what_is_not_taken():
    assert evaluate(parse_expr("$cfg[9] if false else 1"), ENV) == 1
    assert evaluate(parse_expr("false and $nope"), ENV) is False
    assert evaluate(parse_expr("true or $cfg[9]"), ENV) is True


@pytest.mark.parametrize("text, code, fragment", [
    ("$cfg[3]", "bad-index", "out of range"), ("$depths[r34]", "bad-index", "no key 'r34'"),
    ("$cfg[1.5]", "bad-index", "whole number"), ("$c[0]", "wrong-type", "cannot index"),
    ("$in.f", "wrong-type", "has no '.f'"), ("$c.x", "wrong-type", "no field"),
    ("$c and true", "wrong-type", "true or false"),
    ("1 if $c else 2", "wrong-type", "true or false"), ("not 1", "wrong-type", "true or false"),
    ("$v < 3", "wrong-type", "needs a number"), ("len(3)", "wrong-type", "len() of"),
    ("make_divisible(3, 0)", "bad-expression", "divisor"), ("$c[1:]", "wrong-type", "cannot slice"),
    ("$cfg[a:]", "bad-index", "whole number"),
])
def test_evaluation_errors_are_typed_and_located(text, code, fragment):
    with pytest.raises(ExprError) as info:
        evaluate(parse_expr(text), ENV)
    assert info.value.code == code and fragment in info.value.message


@pytest.mark.parametrize("text, pos", [
    ("1 < 2 < 3", 6), ("1 if true", 9), ("$in.", 4), ("$x[1", 4), ("max(1, k=2)", 7), ("a ==", 4),
])
def test_parse_errors_point_at_the_character(text, pos):
    with pytest.raises(ExprError) as info:
        parse_expr(text)
    assert info.value.pos == pos


@pytest.mark.parametrize("text", [
    "+".join(["1"] * 1000), "-" * 1000 + "1", "2" + "**2" * 600, "[" * 1000 + "]" * 1000, "not " * 400 + "true",
    "$a" + "[0]" * 600, " or ".join(["true"] * 250), "1 if true else " * 130 + "0",
])
def test_deep_chains_are_refused_not_a_recursion_error(text):
    with pytest.raises(ExprError) as info:
        parse_expr(text)
    assert "nested deeper than" in info.value.message


def test_a_chain_within_the_limit_evaluates():
    assert evaluate(parse_expr("+".join(["1"] * (MAX_DEPTH - 1))), {}) == MAX_DEPTH - 1


def test_deep_chain_in_a_spec_is_a_located_bad_expression():
    text = "archspec: 1\nname: t\ninput: [3, 8, 8]\nbody: conv(" + "+".join(["1"] * 900) + ", 1)\n"
    with pytest.raises(SpecError) as info:
        archspec.loads(text, "t.yaml")
    (d,) = info.value.diagnostics
    assert d.code == "bad-expression" and d.loc is not None and d.loc.line == 4


def test_vars_hold_tables_and_expressions_over_them(tmp_path):
    text = """archspec: 1
name: t
input: [3, 8, 8]
vars:
  variant: b
  widths: {a: [8, 16], b: [4, "$base * 3"]}
  base: 2
  chosen: $widths[$variant]
body: conv($chosen[1], 1)
"""
    s = archspec.loads(text.replace("  base: 2\n", "").replace("vars:\n", "vars:\n  base: 2\n"), "t.yaml")
    assert s.vars["widths"] == {"a": [8, 16], "b": [4, 6]} and s.vars["chosen"] == [4, 6]
    assert archspec.compile(s).output_shapes()["main"] == (6, 8, 8)
    s = archspec.loads(text.replace("  base: 2\n", "").replace("vars:\n", "vars:\n  base: 2\n"), "t.yaml",
                       variant="a")
    assert archspec.compile(s).output_shapes()["main"] == (16, 8, 8)


def test_an_error_inside_a_table_points_into_it():
    text = "archspec: 1\nname: t\ninput: [3, 8, 8]\nvars:\n  t: {a: [1, \"$nope\"]}\nbody: relu\n"
    with pytest.raises(SpecError) as info:
        archspec.loads(text, "t.yaml")
    (d,) = info.value.diagnostics
    assert d.code == "unknown-variable" and str(d.loc) == "t.yaml:5:15"
