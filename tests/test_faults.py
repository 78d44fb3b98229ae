"""Spec faults: each is reported with its stable code, message and file:line:col.

Every test writes a small broken spec and asserts the diagnostic a user sees.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archspec
from archspec.errors import Diagnostic, SpecError

TINY = (Path(__file__).parent / "fixtures" / "tiny.yaml").read_text()


def faults(path: Path, **vars) -> list[Diagnostic]:
    """Run the whole torch-free pipeline plus expect:, returning every diagnostic."""
    result = archspec.check_file(path, vars)
    assert not result.ok, "the spec was expected to fail"
    return result.diagnostics


def only(path: Path, code: str, **vars) -> Diagnostic:
    diags = [d for d in faults(path, **vars) if d.code == code]
    assert len(diags) == 1, [d.headline() for d in faults(path, **vars)]
    return diags[0]


def at(d: Diagnostic, line: int, col: int) -> None:
    assert d.loc is not None
    assert (d.loc.line, d.loc.col) == (line, col), d.headline()


def test_tiny_fixture_is_valid(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    assert archspec.check_file(path).ok


def mutate(tmp_path: Path, old: str, new: str) -> Path:
    assert old in TINY
    path = tmp_path / "broken.yaml"
    path.write_text(TINY.replace(old, new, 1))
    return path


def test_wrong_width_count_in_tuple(tmp_path):
    d = only(mutate(tmp_path, "mix: mixed(8, 8, 16)", "mix: mixed(8, 8, 16, 4)"), "too-many-arguments")
    at(d, 27, 24)  # the extra fourth width
    assert "takes 3 arguments" in d.message
    assert d.expected == "mixed(a, b, c)"
    assert d.found == "4 arguments"
    assert d.path == "mix"


def test_missing_parameter(tmp_path):
    d = only(mutate(tmp_path, "mix: mixed(8, 8, 16)", "mix: mixed(8, 8)"), "missing-argument")
    at(d, 27, 8)
    assert d.message == "mixed() is missing 1 argument: c"
    assert d.notes and "'mixed' is defined here" in d.notes[0][1]


def test_unknown_op_with_suggestion(tmp_path):
    d = only(mutate(tmp_path, "pool: global_avgpool", "pool: global_avgpol"), "unknown-op")
    at(d, 28, 9)
    assert d.message == "unknown op or block 'global_avgpol'"
    assert (d.hint or "").startswith("did you mean 'global_avgpool'")


def test_unknown_reference(tmp_path):
    d = only(mutate(tmp_path, "from: mix", "from: mixx"), "unknown-reference")
    at(d, 34, 11)
    assert "no node named 'mixx'" in d.message
    assert "'mix'" in (d.hint or "")


def test_input_too_small_names_first_node_and_smallest_input(tmp_path):
    path = mutate(tmp_path, "pool: global_avgpool",
                  "pool: maxpool(4, s=4)\n  pool2: maxpool(4, s=4)\n  gap: global_avgpool")
    assert archspec.check_file(path).ok  # 32 → 16 → 4 → 1
    d = only(path, "input-too-small", input=[3, 16, 16])
    assert d.path == "pool2"
    at(d, 29, 10)
    assert "turns a 2×2 input into 0×0" in d.message
    assert d.hint == "the smallest input this network accepts is 31×31 (given 16×16)"


def test_concat_of_mismatched_sizes(tmp_path):
    d = only(mutate(tmp_path, "- maxpool(3, s=1, p=1)", "- maxpool(3, s=2, p=1)"),
             "shape-mismatch")
    at(d, 27, 8)  # the instance line in body:
    assert d.path == "mix"
    assert d.message == "concat inputs differ in spatial size"
    assert d.found == "8×16×16, 16×16×16, 8×8×8"
    assert any("concat written here" in text for _, text in d.notes)


def test_wrong_type_of_argument(tmp_path):
    d = only(mutate(tmp_path, "stem: cbr(16, 3, s=2, p=1)", "stem: cbr(sixteen, 3, s=2, p=1)"), "bad-argument")
    at(d, 11, 18)  # conv($out ...) inside the template: the value came from the caller
    assert "conv() argument 'out'" in d.message
    assert d.found == "'sixteen'"


def test_cycle(tmp_path):
    path = mutate(tmp_path, "  pool: global_avgpool\n", "  pool: {from: fc, body: global_avgpool}\n")
    d = only(path, "cycle")
    at(d, 28, 16)
    assert d.message.startswith("the graph has a cycle: ")
    assert "fc" in d.message and "pool" in d.message


def test_duplicate_name(tmp_path):
    d = only(mutate(tmp_path, "  flatten: flatten\n", "  flatten: flatten\n  stem: relu\n"), "duplicate-key")
    at(d, 30, 3)
    assert d.message == "duplicate key 'stem' (first written at {}:26:3)".format(tmp_path / "broken.yaml")


def test_failed_expect(tmp_path):
    d = only(mutate(tmp_path, "mix: [32, 16, 16]", "mix: [40, 16, 16]"), "expect-failed")
    at(d, 44, 37)
    assert d.message == "expected output shape of 'mix' 40×16×16, computed 32×16×16"


def test_unknown_field_with_suggestion(tmp_path):
    d = only(mutate(tmp_path, "loss_weight: 0.5", "los_weight: 0.5"), "unknown-field")
    at(d, 36, 5)
    assert d.hint == "did you mean 'loss_weight'?"


def test_unknown_variable(tmp_path):
    d = only(mutate(tmp_path, "fc: linear($classes)", "fc: linear($clases)"), "unknown-variable")
    at(d, 30, 14)
    assert d.hint == "did you mean 'classes'?"


def test_recursive_block(tmp_path):
    d = only(mutate(tmp_path, "left: cbr($a, 1)", "left: mixed($a, $b, $c)"), "recursive-block")
    assert "mixed → mixed" in d.message


def test_unused_branch(tmp_path):
    path = mutate(tmp_path, "  pool: global_avgpool\n",
                  "  extra: {from: stem, body: relu}\n  pool: {from: mix, body: global_avgpool}\n")
    d = only(path, "unused-node")
    assert d.path == "extra"
    at(d, 28, 29)


def test_yaml_syntax_error_has_hint(tmp_path):
    d = only(mutate(tmp_path, "stem: cbr(16, 3, s=2, p=1)", "stem: cbr(16, 3, s: 2)"), "yaml-syntax")
    assert d.loc is not None and d.loc.line == 26
    assert "k=v" in (d.hint or "")


def test_all_errors_of_a_file_are_reported(tmp_path):
    path = mutate(tmp_path, "pool: global_avgpool", "pool: global_avgpol")
    path.write_text(path.read_text().replace("loss_weight: 0.5", "los_weight: 0.5").replace("fc: linear($classes)",
                                                                                            "fc: linear(cls=3)"))
    codes = {d.code for d in faults(path)}
    assert {"unknown-field"} <= codes  # validation errors come together
    path.write_text(TINY.replace("pool: global_avgpool", "pool: global_avgpol").replace("fc: linear($classes)",
                                                                                      "fc: linear(cls=3)"))
    codes = [d.code for d in faults(path)]
    assert codes.count("unknown-op") == 1 and codes.count("unknown-argument") == 1


def test_rendered_error_is_compiler_style(tmp_path):
    path = mutate(tmp_path, "pool: global_avgpool", "pool: global_avgpol")
    with pytest.raises(SpecError) as info:
        archspec.compile(path)
    text = info.value.render()
    first = text.splitlines()[0]
    assert first == f"{path}:28:9: error[unknown-op] pool: unknown op or block 'global_avgpol'"
    assert "28 |   pool: global_avgpol" in text
    assert "   |         ^^^^^^^^^^^^^" in text
    assert "Traceback" not in text


def test_one_fault_in_a_template_used_many_times_is_reported_once(tmp_path):
    path = mutate(tmp_path, "      conv: conv($out, $k, s=$s, p=$p, bias=false)",
                  "      conv: conv($out, $k, s=$s, p=$p, bias=maybe)")
    (d,) = faults(path)
    assert d.code == "bad-argument" and d.path == "stem/conv"
    assert d.also == ["mix/left/conv", "mix/mid/0/conv", "mix/mid/1/conv", "mix/right/1/conv"]
    assert "the same in 4 more places: mix/left/conv" in d.render()
    assert any(text == "in the block used here" and loc.line == 26 for loc, text in d.notes)
