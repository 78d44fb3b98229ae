"""Stage 1, load: safe YAML with a location for every node."""

from __future__ import annotations

import pytest

from archspec.errors import SpecError
from archspec.load import load_file, load_text


def codes(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_text(text, "t.yaml")
    return [d.code for d in info.value.diagnostics]


def test_locations_of_keys_values_and_list_items():
    src = load_text("a: 1\nbody:\n  x: conv(3)\n  y:\n    - relu\n    - 'flatten'\n", "t.yaml")
    assert src.data == {"a": 1, "body": {"x": "conv(3)", "y": ["relu", "flatten"]}}
    assert str(src.loc(("body", "x"))) == "t.yaml:3:6"
    assert str(src.key_loc(("body", "x"))) == "t.yaml:3:3"
    assert str(src.loc(("body", "y", 1))) == "t.yaml:6:7"
    assert str(src.loc_in(("body", "y", 1), 2)) == "t.yaml:6:10"  # quoted: one column for the quote
    assert str(src.loc(("body", "missing", "deeper"))) == "t.yaml:3:3"  # nearest written ancestor


def test_underscored_integers_and_floats():
    assert load_text("p: 6_624_904\ne: 1.0e-3\n").data == {"p": 6624904, "e": 0.001}


@pytest.mark.parametrize("text, code", [
    ("a: &x [1]\nb: *x\n", "yaml-alias"),
    ("a: &x {k: 1}\nb:\n  <<: *x\n", "yaml-alias"),
    ("a: !!python/object:os.system 'ls'\n", "yaml-tag"),
    ("a: !custom 3\n", "yaml-tag"),
    ("a: 2014-09-17\n", "yaml-tag"),
    ("a: 1\na: 2\n", "duplicate-key"),
    ("a: [1, 2\n", "yaml-syntax"),
    ("? [a, b]\n: 1\n", "yaml-key"),
    ("1.5: x\n", "yaml-key"),
])
def test_refused_yaml(text, code):
    assert codes(text) == [code]


def test_billion_laughs_is_refused_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]" for i in range(1, 12)]
    assert codes("\n".join(lines)) == ["yaml-alias"]


def test_deep_nesting_is_refused():
    assert codes("a: " + "[" * 200 + "]" * 200) in (["yaml-too-deep"], ["yaml-syntax"])


def test_duplicate_key_names_both_places():
    with pytest.raises(SpecError) as info:
        load_text("body:\n  conv1: relu\n  conv1: relu\n", "t.yaml")
    d = info.value.diagnostics[0]
    assert str(d.loc) == "t.yaml:3:3" and "first written at t.yaml:2:3" in d.message


def test_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(SpecError) as info:
        load_file(tmp_path / "none.yaml")
    assert info.value.diagnostics[0].code == "file-not-found"
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(SpecError) as info:
        load_file(bad)
    assert info.value.diagnostics[0].code == "yaml-encoding"


def test_flow_sequences_are_remembered():
    src = load_text("a: [1, 2]\nb:\n  - 1\n")
    assert ("a",) in src.flow and ("b",) not in src.flow
