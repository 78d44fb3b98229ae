"""The JSON Schema for editors: current, valid draft-07, described, and true to what archspec accepts."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

import archspec
from archspec.cli import main
from archspec.schema import spec_schema

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../schema/archspec.schema.json"
TINY = (ROOT / "tests" / "fixtures" / "tiny.yaml").read_text()


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = spec_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_committed_schema_is_what_archspec_schema_prints():
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0, result.output
    committed = (ROOT / "schema" / "archspec.schema.json").read_text()
    assert result.output == committed, "stale: run archspec schema > schema/archspec.schema.json"
    assert json.loads(committed) == spec_schema()


def _properties(node):
    """Every (name, schema) under a `properties` anywhere in the schema."""
    if isinstance(node, dict):
        yield from node.get("properties", {}).items()
        for value in node.values():
            yield from _properties(value)
    elif isinstance(node, list):
        for value in node:
            yield from _properties(value)


def test_every_field_and_definition_is_described():
    schema = spec_schema()
    fields = list(_properties(schema))
    assert len(fields) > 25
    assert [name for name, sub in fields if not sub.get("description")] == []
    assert [name for name, sub in schema["definitions"].items() if not sub.get("description")] == []
    assert {"Layer", "Call", "Branches", "ConstructModel", "BlockModel", "HeadModel", "ExpectModel"} <= set(
        schema["definitions"])
    assert "conv" in schema["definitions"]["Call"]["examples"]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_spec_names_the_schema_and_validates(path, validator):
    text = path.read_text()
    assert text.splitlines()[0] == MODELINE
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(text))]
    assert errors == []


def test_tiny_fixture_validates(validator):
    assert validator.is_valid(yaml.safe_load(TINY))


BAD = [
    ("input: [3, 32, 32]", "input: big"),
    ("input: [3, 32, 32]", "input: [3, 0, 32]"),
    ("vars:\n  classes: 10", "vars: [1]"),
    ("archspec: 1", "archspec: 2"),
    ("name: tiny", "name: 3"),
    ("input: [3, 32, 32]", "input: [3, 32, 32]\nbodyy: relu"),
    ("mix: mixed(8, 8, 16)", "mix: {body: relu, concat: [relu]}"),
    ("mix: mixed(8, 8, 16)", "mix: {concat: [relu], repeat: 2}"),
    ("mix: mixed(8, 8, 16)", "mix: {body: relu, repeats: 2}"),
    ("mix: mixed(8, 8, 16)", "mix: []"),
    ("mix: mixed(8, 8, 16)", "mix: 3"),
    ("mix: mixed(8, 8, 16)", "mix: 'mixed(8, 8'"),
    ("mix: mixed(8, 8, 16)", "forward: mixed(8, 8, 16)"),
    ("from: mix", "from: 'mix x'"),
]


def _mutant(old: str, new: str):
    assert old in TINY, old
    return TINY.replace(old, new, 1)


@pytest.mark.parametrize("old, new", BAD, ids=[n for _, n in BAD])
def test_a_wrong_spec_fails_the_schema_and_archspec_alike(old, new, validator, tmp_path):
    text = _mutant(old, new)
    assert not validator.is_valid(yaml.safe_load(text))
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert not archspec.check_file(path).ok  # the schema is never stricter than archspec


def test_heads_need_from_and_blocks_refuse_it(validator):
    data = yaml.safe_load(TINY)
    head = next(iter(data["heads"].values()))
    del head["from"]
    assert not validator.is_valid(data)
    data = yaml.safe_load(TINY)
    next(iter(data["blocks"].values()))["from"] = "input"
    assert not validator.is_valid(data)


def _lang_specs() -> list[tuple[str, str]]:
    from test_lang_import import RESNET18
    from test_lang_python_source import HEAD, SPECS

    lib = (ROOT / "tests" / "fixtures" / "lang" / "resnet_lib.yaml").read_text()
    return [(name, HEAD + text) for name, text in SPECS.items()] + [("resnet_lib", lib), ("resnet18", RESNET18)]


@pytest.mark.parametrize("name, text", _lang_specs(), ids=[n for n, _ in _lang_specs()])
def test_specs_with_the_newer_forms_validate(name, text, validator):
    """splice:, when:, name:, names:/start:, $in, callee variables, tables, import: and library files."""
    assert [e.message for e in validator.iter_errors(yaml.safe_load(text))] == []


LANG_BAD = [
    ("mix: mixed(8, 8, 16)", "mix: {splice: [relu], concat: [relu]}"),
    ("mix: mixed(8, 8, 16)", "mix: {start: 1, body: relu}"),
    ("mix: mixed(8, 8, 16)", "mix: {repeat: 2, names: layer, body: relu}"),
    ("mix: mixed(8, 8, 16)", "mix: {concat: [relu], names: 'a{i}'}"),
    ("mix: mixed(8, 8, 16)", "mix: {body: relu, when: [1]}"),
    ("archspec: 1", "archspec: 1\nimport: 3"),
]


@pytest.mark.parametrize("old, new", LANG_BAD, ids=[n for _, n in LANG_BAD])
def test_misused_newer_forms_fail_the_schema_and_archspec_alike(old, new, validator, tmp_path):
    test_a_wrong_spec_fails_the_schema_and_archspec_alike(old, new, validator, tmp_path)


def test_a_library_may_not_have_a_body_without_a_name(validator):
    assert validator.is_valid({"archspec": 1, "blocks": {}, "vars": {"a": {"b": [1, 2]}}})
    assert not validator.is_valid({"archspec": 1, "blocks": {}, "heads": {}})
    assert not validator.is_valid({"archspec": 1, "body": "relu"})
