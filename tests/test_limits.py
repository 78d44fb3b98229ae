"""Limits: whatever its size or nesting, a spec is answered quickly, with bounded memory, by located errors.

Each test writes a spec that once crashed or hung the checker (a RecursionError, a size no machine has that
passed `check` and crashed `build`, an expansion that ran for minutes) and asserts the located error, and
that it comes fast.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import archspec
from archspec.cli import main
from archspec.errors import Diagnostic
from archspec.expand import MAX_NESTING, MAX_NODES
from archspec.expr import MAX_DEPTH, ExprError, parse_call
from archspec.infer import MAX_MIN_INPUT, min_input, search_min_input
from archspec.ops.common import MAX_ELEMENTS, MAX_PARAMS, MAX_SIZE

HEAD = "archspec: 1\nname: t\ninput: [3, 32, 32]\n"


def check(tmp_path: Path, text: str, seconds: float = 2.0, **vars) -> list[Diagnostic]:
    """Check `text`, which must fail within `seconds`; every diagnostic located."""
    path = tmp_path / "t.yaml"
    path.write_text(text)
    start = time.perf_counter()
    result = archspec.check_file(path, vars)
    took = time.perf_counter() - start
    assert took < seconds, f"check took {took:.1f} s"
    assert not result.ok
    for d in result.diagnostics:
        assert d.loc is not None and d.loc.line >= 1 and d.loc.col >= 1, d.headline()
    return result.diagnostics


def one(diags: list[Diagnostic], code: str) -> Diagnostic:
    assert [d.code for d in diags] == [code], [d.headline() for d in diags]
    return diags[0]


# -- expressions ---------------------------------------------------------------

@pytest.mark.parametrize("inner", ["-" * 990 + "8", "1+" * 990 + "8", "(" * 500 + "8" + ")" * 500,
                                   "2**" * 600 + "1", "-(" * 300 + "8" + ")" * 300, "[" * 600 + "]" * 600,
                                   "min(" * 300 + "1" + ")" * 300])
def test_deep_expressions_are_bad_expressions(tmp_path, inner):
    text = f"conv({inner}, 3)"
    assert len(text) < 2000
    d = one(check(tmp_path, HEAD + f"body:\n  - {text}\n"), "bad-expression")
    assert "nested deeper than" in d.message and d.loc is not None and d.loc.line == 5 and d.loc.col > 8


def test_expression_depth_limits_are_generous():
    parse_call("f(" + "(" * (MAX_DEPTH // 2 - 2) + "1" + ")" * (MAX_DEPTH // 2 - 2) + ")")  # a bracket: 2 levels
    parse_call("f(" + "+".join(["$a"] * (MAX_DEPTH - 2)) + ")")
    with pytest.raises(ExprError, match=f"deeper than {MAX_DEPTH}"):
        parse_call("f(" + "+".join(["$a"] * (MAX_DEPTH + 2)) + ")")


# -- sizes -------------------------------------------------------------------------

@pytest.mark.parametrize("layers, col", [
    (["flatten", "linear(99999999999999999999)"], 12),
    (["adaptive_avgpool(int(1e308))"], 22),
    (["conv(8, 2147483648)"], 13),
    (["maxpool(3, p=10**12)"], 16),
])
def test_op_sizes_are_bounded_where_written(tmp_path, layers, col):
    body = "".join(f"  - {layer}\n" for layer in layers)
    d = one(check(tmp_path, HEAD + "body:\n" + body), "bad-argument")
    assert (d.loc.line, d.loc.col) == (4 + len(layers), col)  # type: ignore[union-attr]
    assert f"less than or equal to {MAX_SIZE}" in d.message


def test_a_variable_used_as_a_size_is_bounded_through_set(tmp_path):
    text = HEAD + "vars:\n  classes: 10\nbody:\n  - flatten\n  - linear($classes)\n"
    d = one(check(tmp_path, text, classes=10**30), "bad-argument")
    assert d.found == str(10**30) and d.loc is not None and (d.loc.line, d.loc.col) == (8, 12)


@pytest.mark.parametrize("shape", ["[3, 1000000000000, 1000000000000]", "[2147483648]", "[3, 30000, 30000]"])
def test_the_input_is_bounded(tmp_path, shape):
    d = one(check(tmp_path, f"archspec: 1\nname: t\ninput: {shape}\nbody: relu\n"), "tensor-too-large")
    assert d.loc is not None and (d.loc.line, d.loc.col) == (3, 8) and f"{MAX_ELEMENTS:,}" in (d.expected or "")


def test_the_input_is_bounded_through_set(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + "body: relu\n")
    result = archspec.check_file(path, {"input": [3, 10**12, 10**12]})
    assert [d.code for d in result.diagnostics] == ["tensor-too-large"]


def test_a_node_with_too_many_parameters_is_refused(tmp_path):
    d = one(check(tmp_path, HEAD + "body:\n  - relu\n  - conv(1000000, 3)\n  - conv(1000000, 3)\n"),
            "tensor-too-large")
    assert d.path == "2" and d.found == "9,000,001,000,000" and "parameters" in d.message
    assert d.expected == f"at most {MAX_PARAMS:,} (2^40) parameters"


def test_a_node_with_more_parameters_than_int32_counts_them(tmp_path):
    """A language model's embedding passes 2^31 parameters: counted, not refused (build refuses it by memory)."""
    path = tmp_path / "t.yaml"
    path.write_text("archspec: 1\nname: t\ninput: [16384]\nbody: linear(262144)\n")
    result = archspec.check_file(path)
    assert result.ok and result.typed is not None and result.typed.total("params") == 16384 * 262144 + 262144


def test_a_node_with_too_large_an_output_is_refused(tmp_path):
    d = one(check(tmp_path, HEAD + "body:\n  - conv(8, 1, p=100000)\n  - relu\n"), "tensor-too-large")
    assert d.path == "0" and d.found == "8×200032×200032 = 320,102,408,192"


def test_sizes_up_to_the_bounds_build_on_the_meta_device():
    pytest.importorskip("torch")
    spec = HEAD.replace("[3, 32, 32]", "[1, 46000, 46000]") + "body:\n  - conv(1, 1)\n  - relu\n"
    module = archspec.build(archspec.loads(spec, "t.yaml"), device="meta")
    assert sum(p.numel() for p in module.parameters()) == 2


# -- expansion -------------------------------------------------------------------

def test_a_repeat_inside_a_repeat_is_refused_before_expanding(tmp_path):
    text = HEAD + "body:\n  repeat: 10000\n  body:\n    repeat: 10000\n    body: relu\n"
    d = one(check(tmp_path, text, seconds=1), "too-large")
    assert d.loc is not None and (d.loc.line, d.loc.col) == (5, 3)
    assert f"more than {MAX_NODES:,} nodes" in d.message


def _doubling(levels: int) -> str:
    blocks = "".join(f"  b{i}:\n    body: [b{i + 1}, b{i + 1}]\n" for i in range(levels - 1))
    return HEAD + f"blocks:\n{blocks}  b{levels - 1}:\n    body: [relu]\nbody:\n  - b0\n"


@pytest.mark.parametrize("levels", [20, 40])
def test_blocks_that_call_the_next_twice_are_refused_at_once(tmp_path, levels):
    d = one(check(tmp_path, _doubling(levels), seconds=1), "too-large")
    assert d.loc is not None and d.loc.line == 2 * levels + 6 and "block 'b0'" in d.message


def test_a_network_just_over_the_limit_is_refused_where_it_passes_it(tmp_path):
    text = HEAD + "body:\n  - repeat: 10000\n    body: [relu, relu, relu, relu, relu, relu, relu, relu, relu, relu]\n" \
        + "  - repeat: 10000\n    body: [relu, relu, relu, relu, relu, relu, relu, relu, relu, relu]\n" \
        + "  - relu\n"
    d = one(check(tmp_path, text, seconds=10), "too-large")
    assert d.loc is not None and (d.loc.line, d.loc.col) == (7, 5)  # the second repeat
    assert d.message == "repeat: makes at least 100,000 nodes, which with the 100,001 before it passes the limit " \
                        f"of {MAX_NODES:,} for a network"


def test_expansion_stops_at_the_node_limit_when_counts_are_variables(tmp_path):
    text = HEAD + "vars:\n  n: 10000\nbody:\n  repeat: $n\n  body:\n    repeat: $n\n    body: relu\n"
    d = one(check(tmp_path, text, seconds=8), "too-large")  # the inner repeat, once the nodes before it count
    assert d.loc is not None and (d.loc.line, d.loc.col) == (9, 5) and "with the 190,001 before it" in d.message


def test_a_chain_of_distinct_blocks_deeper_than_64_is_too_deep(tmp_path):
    blocks = "".join(f"  b{i}:\n    body: [b{i + 1}]\n" for i in range(70)) + "  b70:\n    body: [relu]\n"
    d = one(check(tmp_path, HEAD + f"blocks:\n{blocks}body:\n  - b0\n"), "too-deep")
    assert d.loc is not None and d.loc.line == 6 + 2 * 63 and "deeper than 64" in d.message


def test_a_chain_of_64_distinct_blocks_is_fine(tmp_path):
    blocks = "".join(f"  b{i}:\n    body: [b{i + 1}]\n" for i in range(63)) + "  b63:\n    body: [relu]\n"
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + f"blocks:\n{blocks}body:\n  - b0\n")
    assert archspec.check_file(path).ok


# -- the smallest-input hint -------------------------------------------------------

def _long_chain(last: str, copies: int = 2) -> str:
    repeats = "".join("  - repeat: 10000\n    body: conv(1, 3, p=1)\n" for _ in range(copies))
    return "archspec: 1\nname: t\ninput: [1, 8, 8]\nbody:\n" + repeats + f"  - {last}\n"


def test_the_smallest_input_hint_is_exact_on_a_large_graph_when_near(tmp_path):
    d = one(check(tmp_path, _long_chain("conv(1, 9)"), seconds=10), "input-too-small")
    assert d.hint == "the smallest input this network accepts is 9×9 (given 8×8)"


def test_the_smallest_input_search_is_bounded_on_a_large_graph(tmp_path):
    d = one(check(tmp_path, _long_chain("conv(1, 5000)"), seconds=10), "input-too-small")
    assert d.hint is not None and d.hint.startswith("no input up to ")
    assert d.hint.endswith(f"works for this network, nor {MAX_MIN_INPUT}×{MAX_MIN_INPUT}")


def test_the_smallest_input_hint_names_a_larger_size_that_works(tmp_path):
    d = one(check(tmp_path, _long_chain("conv(1, 3000)"), seconds=10), "input-too-small")
    assert d.hint is not None and d.hint.startswith("no input up to ")
    size = int(d.hint.rsplit("; ", 1)[1].split("×")[0])
    assert 3000 <= size <= MAX_MIN_INPUT


def test_min_input_is_exact_on_small_graphs():
    typed = archspec.compile(archspec.loads(HEAD + "body:\n  - conv(8, 7, s=2)\n  - maxpool(3, s=2)\n"))
    assert min_input(typed.graph) == (11, 11)  # the pool needs 3×3
    assert search_min_input(typed.graph) == ((11, 11), 11)


# -- through the command line --------------------------------------------------------

@pytest.mark.parametrize("name, text", [
    ("deep", HEAD + "body:\n  - conv(" + "-" * 990 + "8, 3)\n"),
    ("huge", HEAD + "body:\n  - flatten\n  - linear(99999999999999999999)\n"),
    ("bomb", _doubling(40)),
])
@pytest.mark.parametrize("verb", [["check"], ["build", "--device", "meta"], ["check", "--deep"], ["summary"]])
def test_every_verb_exits_1_with_the_located_error(tmp_path, name, text, verb):
    if verb[0] == "build" or "--deep" in verb:
        pytest.importorskip("torch")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, [*verb, str(path)])
    assert result.exit_code == 1, result.output
    assert f"{path}:" in result.output and "internal-error" not in result.output


def _nested_blocks(count: int) -> str:
    """`count` blocks, each eight layers deep around the call of the next; a 30-operator expression at the end."""
    blocks = "".join(f"  b{i}:\n    params: [x]\n    body: [{{body: {{body: {{body: {{body: [b{i + 1}($x)]}}}}}}}}]\n"
                     for i in range(count - 1))
    last = "(" * 10 + "+".join(["$x"] * 30) + ")" * 10
    return HEAD + f"blocks:\n{blocks}  b{count - 1}:\n    params: [x]\n    body: ['conv(-{last} + 100, 1)']\n" \
        + "body:\n  - b0(1)\n"


def test_layers_nested_deeper_than_the_limit_through_blocks_are_too_deep(tmp_path):
    d = one(check(tmp_path, _nested_blocks(64)), "too-deep")
    assert d.message == f"layers nested deeper than {MAX_NESTING} levels, through the blocks they call"
    assert d.loc is not None and (d.loc.line, d.loc.col) == (4 + 3 * 32, 40)


def test_layers_nested_just_within_the_limit_check_and_build(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(_nested_blocks(28))
    result = archspec.check_file(path)
    assert result.ok and result.typed is not None
    assert result.typed.total("params") == 70 * 3 + 70  # conv(-30 + 100, 1) on 3 channels, with its bias
    if importlib.util.find_spec("torch") is not None:
        archspec.build(result.typed, device="meta")
