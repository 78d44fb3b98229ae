"""The spec language: pydantic models for its fixed-shape parts, and the layer tree.

A *layer* is one of:

- a call string, `conv(64, 7, s=2, p=3)` or `relu` -> `CallLayer`;
- a list of layers, run in order, named `0, 1, ...` -> `SeqLayer`;
- a mapping of names to layers, run in order -> `SeqLayer` (named);
- a mapping with construct keys -> `Construct`: exactly one of `body:` (a
  layer), `splice:` (a layer whose items join the enclosing list), `concat:`
  or `add:` (branches that all read the same input), plus optional `from:`
  (where the input comes from), `repeat:` (copies, with `start:` and
  `names:`), `when:` (present only where true) and `name:` (its own name).

The pydantic models validate every mapping's keys and value types; the layer
tree itself is recursive and built by `validate.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, WithJsonSchema

from .errors import Location
from .expr import CallText, Expr
from .load import Source

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""A plain name: of a node, block, head, branch, parameter or variable."""
ITEM_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]*$"
"""A name given by `name:` or a `names:` pattern: may start with a digit and hold `-` (`block1-0`)."""
REF_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]*(/[A-Za-z0-9_][A-Za-z0-9_-]*)*$"
"""A reference to a node: a name, a number (a list item) or a path of them, `inception4b/branch2`."""


def _schema_ref(name: str) -> WithJsonSchema:
    """A value whose grammar validate.py walks itself: only the JSON Schema says what it is.

    `name` is a definition of the emitted schema: pydantic's for a model, archspec/schema.py's for
    the recursive layer grammar (`Layer`, `Branches`).
    """
    return WithJsonSchema({"allOf": [{"$ref": f"#/definitions/{name}"}]})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Scalar = Union[StrictBool, StrictInt, StrictFloat, StrictStr]
VarValue = Annotated[Any, WithJsonSchema({"$ref": "#/definitions/VarValue"})]
"""A var's value: a scalar (a string is an expression), or a list or mapping of values (a table)."""
ShapeList = Annotated[list[Annotated[int, Field(ge=1, strict=True)]], Field(min_length=1, max_length=3)]
HW = Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)]
Count = Annotated[int, Field(ge=0, strict=True)]
LayerValue = Annotated[Any, _schema_ref("Layer")]
BranchesValue = Annotated[Any, _schema_ref("Branches")]
RefValue = Annotated[StrictStr, WithJsonSchema({"type": "string", "pattern": REF_PATTERN})]


KINDS = ("body", "splice", "concat", "add")


def _construct_schema(**extra: Any) -> dict[str, Any]:
    """What JSON Schema can say of a construct beyond its keys: one kind; repeat: only with body: or splice:."""
    return {"oneOf": [{"required": [kind]} for kind in KINDS],
            "dependencies": {"repeat": {"anyOf": [{"required": ["body"]}, {"required": ["splice"]}]},
                             "start": ["repeat"], "names": ["repeat"]}, **extra}


class ExpectModel(_Strict):
    """`expect:` assertions about the spec as written, checked by `archspec check` and `archspec build`."""

    params: Count | None = Field(None, description="parameters of the whole network, heads included")
    params_inference: Count | None = Field(
        None, description="parameters used at inference (training-only heads left out)")
    macs: Count | None = Field(None, description="multiply-accumulates of the inference graph, one image")
    output: ShapeList | None = Field(None, description="shape of the main output, batch left out, e.g. [1000]")
    outputs: dict[str, ShapeList] | None = Field(None, description="shapes of head outputs by head name")
    shapes: dict[str, ShapeList] | None = Field(
        None, description="output shapes of named nodes or block instances, e.g. {inception3a: [256, 28, 28]}")
    min_input: HW | None = Field(None, description="smallest input H×W the network accepts, training-only heads "
                                                   "included")
    min_input_inference: HW | None = Field(None, description="smallest input H×W of the inference graph")


class SpecModel(_Strict):
    """An archspec spec: a neural network written in YAML (the language: docs/spec-language.md)."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["name", "input", "body"]},
        {"not": {"anyOf": [{"required": [k]} for k in ("name", "input", "body", "heads", "expect")]},
         "description": "a library: only blocks and vars, for other files to import"}]})

    archspec: Literal[1] = Field(description="spec language version; always 1")
    import_: str | list[str] | None = Field(
        None, alias="import", description="spec files (relative paths) whose blocks: and vars: this file uses; "
                                          "its own blocks and vars override theirs")
    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")] | None = Field(
        None, description="the network's name: letters, digits, _ and -; required with body:")
    doc: str | None = Field(None, description="free text about the network")
    input: ShapeList | None = Field(
        None, description="input shape C, H, W (or fewer dimensions); the batch is symbolic; required with body:")
    vars: dict[str, VarValue] = Field(
        default_factory=dict, json_schema_extra={"propertyNames": {"pattern": NAME_PATTERN}},
        description="variables with defaults, read as $name; a string value is an expression over earlier "
                    "variables; overridden with --set name=value")
    blocks: dict[str, Annotated[Any, _schema_ref("BlockModel")]] = Field(
        default_factory=dict, json_schema_extra={"propertyNames": {"pattern": NAME_PATTERN}},
        description="templates called like ops: name(args); each has params and one of body, concat or add")
    body: LayerValue = Field(None, description="the main network: a layer (a call, a list or mapping of layers, "
                                               "or a construct); a file without body: is a library")
    heads: dict[str, Annotated[Any, _schema_ref("HeadModel")]] = Field(
        default_factory=dict, json_schema_extra={"propertyNames": {"pattern": NAME_PATTERN}},
        description="extra outputs such as auxiliary classifiers; each reads a node named by from:")
    expect: ExpectModel | None = Field(None, description="assertions checked by archspec check and build")


class ConstructModel(_Strict):
    """A construct: exactly one of body, splice, concat or add, with optional from:, repeat:, when: and name:."""

    model_config = ConfigDict(json_schema_extra=_construct_schema())

    body: LayerValue = Field(None, description="a layer: the construct's layers, run in order")
    splice: LayerValue = Field(None, description="a layer whose items become items of the enclosing list, "
                                                 "numbered on from it (a block whose body is a list, or a list)")
    concat: BranchesValue = Field(
        None, description="branches that all read the construct's input; their outputs are concatenated "
                          "along channels, in the order written")
    add: BranchesValue = Field(None, description="branches that all read the construct's input; their outputs "
                                                 "are summed")
    from_: RefValue | list[RefValue] | None = Field(
        None, alias="from", description="the node (or nodes) the construct reads instead of the previous layer: "
                                        "a name such as inception4a, input, or a path such as a/b")
    repeat: StrictInt | StrictStr | None = Field(
        None, description="with body: this many copies in a row, named 0 ... N-1 (a number or an expression); "
                          "$i is the copy's index from 0")
    start: StrictInt | StrictStr | None = Field(
        None, description="with repeat: the first copy's number in its name (default 0)")
    names: Annotated[StrictStr, Field(pattern=r"\{i\}")] | None = Field(
        None, description="with repeat: the copies' names, a pattern where {i} is the number counted from start: "
                          "and {EXPR} an expression, e.g. denselayer{i}")
    when: StrictBool | StrictStr | None = Field(
        None, description="an expression: where it is false the layer is absent and passes its input through")
    name: StrictStr | None = Field(
        None, description="the item's name instead of its key or number; may hold - and {EXPR}, e.g. block1-0")


class BlockModel(ConstructModel):
    """A template under `blocks:`: parameters plus a construct (without from: or name:)."""

    model_config = ConfigDict(json_schema_extra=_construct_schema(
        **{"not": {"anyOf": [{"required": ["from"]}, {"required": ["name"]}]}}))

    params: list[StrictStr | StrictInt] = Field(
        default_factory=list, description="parameter names, read as $name in the body; name=default gives a "
                                          "default, and parameters with defaults come last")
    doc: str | None = Field(None, description="free text about the block")
    columns: list[StrictStr] | None = Field(
        None, description="labels of the parameters in a paper-style table, one per parameter")


class HeadModel(ConstructModel):
    """An output head under `heads:`; `from:` says which node it reads."""

    model_config = ConfigDict(json_schema_extra=_construct_schema(required=["from"]))

    train_only: StrictBool = Field(False, description="left out of the inference graph (an auxiliary classifier)")
    loss_weight: StrictInt | StrictFloat = Field(
        1.0, description="the head's weight in the training loss, exposed as module.loss_weights[name]")


CONSTRUCT_KEYS = ("body", "splice", "concat", "add", "from", "repeat", "start", "names", "when", "name")
BLOCK_ONLY_KEYS = ("params", "doc", "columns")
HEAD_ONLY_KEYS = ("train_only", "loss_weight", "when")


@dataclass(frozen=True)
class CallLayer:
    call: CallText
    loc: Location
    quoted: bool = False

    def loc_at(self, offset: int) -> Location:
        return self.loc.shifted(offset + (1 if self.quoted else 0))


@dataclass(frozen=True)
class Item:
    """A named member of a sequence or of a merge; `loc` is where its name is written."""

    name: str
    layer: Layer
    loc: Location


@dataclass(frozen=True)
class SeqLayer:
    items: tuple[Item, ...]
    loc: Location
    named: bool


@dataclass(frozen=True)
class RefText:
    """A reference written in `from:` or as a merge argument, e.g. `inception4a`."""

    name: str
    loc: Location


@dataclass(frozen=True)
class Pattern:
    """A name written with `{...}` parts: `{i}` (a copy's number) or `{EXPR}`; `parts` alternate text and Expr."""

    parts: tuple[str | Expr, ...]
    loc: Location


@dataclass(frozen=True)
class Construct:
    kind: Literal["body", "splice", "concat", "add"]
    body: Layer | None
    branches: tuple[Item, ...]
    from_: tuple[RefText, ...] | None
    repeat: Expr | None
    loc: Location
    when: Expr | None = None
    start: Expr | None = None
    names: Pattern | None = None
    name: Pattern | None = None


Layer = Union[CallLayer, SeqLayer, Construct]


@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    loc: Location


@dataclass(frozen=True)
class BlockDef:
    name: str
    params: tuple[Param, ...]
    layer: Construct
    loc: Location
    doc: str | None = None
    columns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class HeadDef:
    name: str
    layer: Construct
    train_only: bool
    loss_weight: float
    loc: Location
    when: Expr | None = None


@dataclass
class Spec:
    """A validated spec: its layer trees, templates (its imports' too), evaluated vars and assertions."""

    source: Source
    name: str
    input: tuple[int, ...]
    vars: dict[str, Any]
    blocks: dict[str, BlockDef]
    body: Layer
    heads: dict[str, HeadDef]
    expect: ExpectModel | None
    doc: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    imported: dict[str, str] = field(default_factory=dict)
    """The text of every file imported, directly or not, by file name."""

    @property
    def sources(self) -> dict[str, str]:
        """Every file's text, for rendering diagnostics: the imported files and this one."""
        return {**self.imported, self.file: self.source.text}

    @property
    def file(self) -> str:
        return self.source.file

    def expect_loc(self, *path: str | int) -> Location:
        return self.source.loc(("expect",) + path)


