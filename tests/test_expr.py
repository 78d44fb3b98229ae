"""The call-string expression language: parsing, evaluation and error positions."""

from __future__ import annotations

import pytest

from archspec.expr import ExprError, Kwarg, Lit, Name, Var, evaluate, parse_call, parse_expr, parse_param


def test_call_with_positional_and_keyword_arguments():
    call = parse_call("conv(64, 7, s=2, p=[3, 3])")
    assert call.name == "conv"
    assert [evaluate(a, {}) for a in call.args] == [64, 7]
    assert [(k.key, evaluate(k.value, {})) for k in call.kwargs] == [("s", 2), ("p", [3, 3])]


def test_bare_call_and_empty_parentheses():
    assert parse_call("relu").args == () and parse_call("relu()").name == "relu"


@pytest.mark.parametrize("text, value", [
    ("$c * 2 + 1", 129), ("$c // 3", 21), ("-$c", -64), ("2 ** 3 ** 2", 512), ("(1, 7)", [1, 7]),
    ("min($c, 10)", 10), ("max(1, 2, 3)", 3), ("int(7.9)", 7), ("ceil($c / 3)", 22), ("1_000", 1000),
    ("1e-3", 0.001), ("true", True), ("null", None), ("same", "same"), ("'a b'", "a b"), ("$c % 5", 4),
])
def test_evaluate(text, value):
    assert evaluate(parse_expr(text), {"c": 64}) == value


@pytest.mark.parametrize("text, pos, fragment", [
    ("conv(64, 7", 10, "expected ',' or ')'"),
    ("conv(64 7)", 8, "expected ',' or ')'"),
    ("conv(s=1, 3)", 10, "positional argument after a keyword"),
    ("conv(s=1, s=2)", 10, "given twice"),
    ("conv(64) x", 9, "unexpected 'x'"),
    ("conv(64; 3)", 7, "unexpected character ';'"),
    ("(64)", 0, "expected an op or block name"),
    ("conv(eval(1))", 5, "unknown function 'eval'"),
])
def test_parse_errors_point_at_the_fault(text, pos, fragment):
    with pytest.raises(ExprError) as info:
        parse_call(text)
    assert info.value.pos == pos and fragment in info.value.message


@pytest.mark.parametrize("text, fragment", [
    ("$missing", "unknown variable '$missing'"), ("1 / 0", "division by zero"), ("'a' * 2", "needs a number"),
    ("10 ** 100", "exponent too large"), ("99999999 * 99999999", "out of range"),
    ("0 ** -1", "division by zero"), ("1e400 - 1e400", "out of range"),  # found by tests/test_fuzz.py
])
def test_evaluation_errors(text, fragment):
    with pytest.raises(ExprError) as info:
        evaluate(parse_expr(text), {"width": 1})
    assert fragment in info.value.message


def test_unknown_variable_suggests_the_closest():
    with pytest.raises(ExprError) as info:
        evaluate(parse_expr("$widht"), {"width": 1})
    assert info.value.hint == "did you mean 'width'?" and info.value.code == "unknown-variable"


def test_parameter_declarations():
    assert parse_param("out") == ("out", None)
    name, default = parse_param("s=1")
    assert name == "s" and isinstance(default, Lit) and default.value == 1


def test_names_and_vars_are_distinct():
    call = parse_call("concat(a, $b)")
    assert isinstance(call.args[0], Name) and isinstance(call.args[1], Var)
    assert all(isinstance(k, Kwarg) for k in parse_call("f(x=1)").kwargs)


def test_long_and_deep_expressions_are_refused():
    with pytest.raises(ExprError):
        parse_call("f(" + "1," * 1500 + ")")
    with pytest.raises(ExprError):
        parse_expr("(" * 100 + "1" + ")" * 100)
