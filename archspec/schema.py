"""The JSON Schema of the spec language, for editors that validate YAML as the user types.

The fixed-shape parts come from the pydantic models in spec.py (`model_json_schema`); the
recursive layer grammar, which validate.py walks by hand, is added here as far as JSON Schema
can say it: a call is a string `name(args)`, a sequence a list or mapping of layers, a construct
a mapping with exactly one of body, splice, concat or add. Written for JSON Schema draft-07, the draft
editors' YAML language servers support. `archspec schema` prints it; torch-free.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from .ops import REGISTRY
from .spec import (
    CONSTRUCT_KEYS,
    ITEM_PATTERN,
    KINDS,
    NAME_PATTERN,
    REF_PATTERN,
    BlockModel,
    ConstructModel,
    HeadModel,
    SpecModel,
)
from .validate import RESERVED_NAMES

DRAFT = "http://json-schema.org/draft-07/schema#"
CALL_PATTERN = r"^\s*\$?[A-Za-z_][A-Za-z0-9_]*\s*(\([\s\S]*\))?\s*$"
"""A layer call: an op or block name (or `$variable` holding one), then optionally its arguments in parentheses."""
NODE_NAME_PATTERN = "^[A-Za-z][A-Za-z0-9_]*$"
"""A key of a mapping of layers: a module name in the built network."""
SPEC_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
"""SpecModel.name's pattern (a test keeps the two equal)."""

PATTERN_MESSAGES = {
    CALL_PATTERN: "a call: name(args), e.g. conv(64, 3, s=2), or a bare name such as relu",
    NODE_NAME_PATTERN: "a node name: a letter, then letters, digits and _, e.g. branch1",
    NAME_PATTERN: "a name: a letter or _, then letters, digits and _, e.g. inception",
    ITEM_PATTERN: "a node name: letters, digits, _ and -, e.g. block1-0",
    r"\{i\}": "a pattern of names with {i} where the copy's number goes, e.g. denselayer{i}",
    REF_PATTERN: "a node reference: a name, a list index or a path of them joined by /, e.g. inception4a/branch2",
    SPEC_NAME_PATTERN: "the network's name: letters, digits, _ and -, e.g. googlenet",
}
"""What a value that misses a pattern should be, in words: editors show it instead of the regular expression.

yaml-language-server reads `patternErrorMessage`, VS Code's JSON service `errorMessage`; both are set.
"""


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft-07) of a spec file, as a JSON-ready dict."""
    models = (SpecModel, BlockModel, HeadModel, ConstructModel)
    _, generated = models_json_schema([(m, "validation") for m in models], ref_template="#/definitions/{model}")
    definitions = generated["$defs"]
    top = definitions.pop("SpecModel")
    definitions.update(_layer_grammar())
    schema = {"$schema": DRAFT, **top, "title": "archspec spec", "definitions": dict(sorted(definitions.items()))}
    return _pattern_messages(_draft7(schema))


def _layer_grammar() -> dict[str, Any]:
    """Definitions of `Layer`, `Call` and `Branches`, referenced by the models' layer-valued fields."""
    ops = sorted(REGISTRY)
    node_names = {"pattern": NODE_NAME_PATTERN, "not": {"enum": sorted(RESERVED_NAMES)}}
    construct_shaped = {"allOf": [{"propertyNames": {"enum": list(CONSTRUCT_KEYS)}},  # validate's _is_construct
                                  {"anyOf": [{"required": [k]} for k in KINDS]}]}
    return {
        "VarValue": {
            "description": "a number, true/false, null, a string (an expression over earlier vars; a bare word is "
                           "itself), or a list or mapping of values (a table, read as $t[i] or $t[key])",
            "anyOf": [{"type": ["number", "boolean", "string", "null"]},
                      {"type": "array", "items": {"$ref": "#/definitions/VarValue"}},
                      {"type": "object", "additionalProperties": {"$ref": "#/definitions/VarValue"}}],
        },
        "Call": {
            "type": "string", "pattern": CALL_PATTERN,
            "description": "a call of an op or a block: name(positional, ..., key=value), or a bare name without "
                           "arguments; values are numbers, true/false/null, lists, words, $variables and "
                           "arithmetic. Ops: " + ", ".join(ops),
            "examples": ops,
        },
        "Layer": {
            "description": "a layer: a call such as conv(64, 3), a list of layers (run in order), a mapping of "
                           "names to layers (run in order, named), or a construct (body, splice, concat or add)",
            "anyOf": [
                {"$ref": "#/definitions/Call"},
                {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/Layer"},
                 "description": "layers run in order, named 0, 1, ..."},
                {"$ref": "#/definitions/ConstructModel"},
                {"type": "object", "minProperties": 1, "propertyNames": node_names, "not": construct_shaped,
                 "additionalProperties": {"$ref": "#/definitions/Layer"},
                 "description": "layers run in order, each named by its key (the module name in the built network)"},
            ],
        },
        "Branches": {
            "description": "branches that all read one input: a list (named 0, 1, ...) or a mapping of names to "
                           "layers",
            "anyOf": [
                {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/Layer"}},
                {"type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME_PATTERN},
                 "additionalProperties": {"$ref": "#/definitions/Layer"}},
            ],
        },
    }


def _draft7(node: Any) -> Any:
    """In draft-07 a `$ref` hides its siblings: move them next to an `allOf` holding the reference.

    A `null` default only means "absent" to the models: dropped, so that an editor does not offer to write it.
    """
    if isinstance(node, list):
        return [_draft7(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _draft7(v) for k, v in node.items() if not (k == "default" and v is None)}
    if "$ref" in node and len(node) > 1:
        node = {"allOf": [{"$ref": node.pop("$ref")}], **node}
    return node


def _pattern_messages(node: Any) -> Any:
    """Give every `pattern` its message in words (PATTERN_MESSAGES), under both keywords editors read."""
    if isinstance(node, list):
        return [_pattern_messages(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _pattern_messages(v) for k, v in node.items()}
    pattern = node.get("pattern")
    message = PATTERN_MESSAGES.get(pattern) if isinstance(pattern, str) else None  # not a property named "pattern"
    if message:  # a test checks that every pattern has one
        node.update(patternErrorMessage=message, errorMessage=message)
    return node
