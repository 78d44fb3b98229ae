"""The JSON Schema for editors: current, valid draft-07, described, and true to what archspec accepts."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

import archspec
from archspec.cli import main
from archspec.schema import CALL_PATTERN, PATTERN_MESSAGES, SPEC_NAME_PATTERN, spec_schema

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


# --- YAML 1.2: what an editor's language server reads ---------------------------------------------------------------
# yaml-language-server reads YAML 1.2 with the core schema, where `13_004_888` is a string and `yes`, `n`, `on` are
# strings; with `yaml.yamlVersion: 1.1` it reads `y`, `n`, `yes`, `on`... as booleans, which PyYAML does not for
# `y` and `n`. ruamel.yaml is no stand-in: in its 1.2 mode it still reads `13_004_888` as an integer. So the loaders
# below are PyYAML's SafeLoader with the implicit types of each reading, written from the YAML 1.2.2 spec (10.3.2).

def _yaml_loader(resolvers: list[tuple[str, str, str]]) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {}
    for tag, pattern, first in resolvers:
        Loader.add_implicit_resolver(tag, re.compile(pattern, re.X), list(first))
    return Loader


def _core_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    base = {"0o": 8, "0x": 16}.get(text[:2], 10)
    return int(text[2:] if base != 10 else text, base)


def _core_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    text = loader.construct_scalar(node).lower()
    return float(text.replace(".inf", "inf").replace(".nan", "nan"))


_NUMBER_FIRST = "-+0123456789."
CORE = [
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", _NUMBER_FIRST),
    ("tag:yaml.org,2002:float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                                r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", _NUMBER_FIRST),
]
YAML12 = _yaml_loader(CORE)
YAML12.add_constructor("tag:yaml.org,2002:int", _core_int)
YAML12.add_constructor("tag:yaml.org,2002:float", _core_float)
YAML12.add_constructor("tag:yaml.org,2002:bool", lambda loader, node: loader.construct_scalar(node).lower() == "true")
EDITOR_YAML11 = _yaml_loader([("tag:yaml.org,2002:bool", r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false"
                                                         r"|False|FALSE|on|On|ON|off|Off|OFF)$", "yYnNtTfFoO")])
"""The booleans of YAML 1.1 as yaml-language-server reads them, on top of PyYAML's other YAML 1.1 types."""
EDITOR_YAML11.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in yaml.SafeLoader.yaml_implicit_resolvers.get(first, [])
            if tag != "tag:yaml.org,2002:bool"] + EDITOR_YAML11.yaml_implicit_resolvers.get(first, [])
    for first in {*yaml.SafeLoader.yaml_implicit_resolvers, *EDITOR_YAML11.yaml_implicit_resolvers}}
EDITOR_YAML11.add_constructor("tag:yaml.org,2002:bool",
                              lambda loader, node: loader.construct_scalar(node).lower() in ("y", "yes", "true", "on"))


def test_the_yaml_readings_differ_where_the_yaml_versions_do():
    text = ("a: 13_004_888\nb: [k, n, yes, on, y]\nc: 010\nd: 0x1F\ne: 0o17\nf: [.inf, -.5, 1e-3, 2.]\n"
            "g: [~, null, True, 12:30]\n")
    assert yaml.load(text, Loader=YAML12) == {"a": "13_004_888", "b": ["k", "n", "yes", "on", "y"], "c": 10,
                                              "d": 31, "e": 15, "f": [float("inf"), -0.5, 0.001, 2.0],
                                              "g": [None, None, True, "12:30"]}
    as_editor_11 = yaml.load(text, Loader=EDITOR_YAML11)
    assert as_editor_11["a"] == 13004888 and as_editor_11["b"] == ["k", False, True, True, True]
    assert yaml.safe_load(text)["b"] == ["k", "n", True, True, "y"]  # PyYAML: archspec's reading


@pytest.fixture(scope="module")
def committed_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads((ROOT / "schema" / "archspec.schema.json").read_text()))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
@pytest.mark.parametrize("loader", [YAML12, EDITOR_YAML11], ids=["yaml1.2", "editor-yaml1.1"])
def test_every_spec_validates_in_an_editor_and_means_there_what_archspec_reads(path, loader, committed_validator):
    as_editor = yaml.load(path.read_text(), Loader=loader)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in committed_validator.iter_errors(as_editor)]
    assert errors == []
    assert as_editor == yaml.safe_load(path.read_text()), "a value the YAML versions read differently: spell it so " \
                                                           "that both agree (docs/editors.md)"


def test_every_pattern_has_a_message_in_words():
    def patterns(node):
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                yield node
            for value in node.values():
                yield from patterns(value)
        elif isinstance(node, list):
            for value in node:
                yield from patterns(value)

    found = list(patterns(spec_schema()))
    assert len(found) >= 5
    assert [n["pattern"] for n in found if not n.get("patternErrorMessage") or not n.get("errorMessage")] == []
    call = spec_schema()["definitions"]["Call"]
    assert call["patternErrorMessage"] == call["errorMessage"] == PATTERN_MESSAGES[CALL_PATTERN]
    assert "conv(64, 3, s=2)" in call["patternErrorMessage"]
    name = spec_schema()["properties"]["name"]  # optional: a library file has none
    assert [a.get("pattern") for a in name["anyOf"]] == [SPEC_NAME_PATTERN, None]


def test_vscode_settings_map_the_schema_to_every_spec():
    settings = json.loads((ROOT / ".vscode" / "settings.json").read_text())
    schemas = settings["yaml.schemas"]
    assert list(schemas) == ["./schema/archspec.schema.json"] and (ROOT / "schema" / "archspec.schema.json").exists()
    globs = schemas["./schema/archspec.schema.json"]
    unmapped = [p.name for p in SPECS if not any(fnmatch.fnmatch(str(p.relative_to(ROOT)), g) for g in globs)]
    assert SPECS and unmapped == []


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
