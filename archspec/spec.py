"""The spec language: pydantic models for its fixed-shape parts, and the layer tree.

A *layer* is one of:

- a call string, `conv(64, 7, s=2, p=3)` or `relu` -> `CallLayer`;
- a list of layers, run in order, named `0, 1, ...` -> `SeqLayer`;
- a mapping of names to layers, run in order -> `SeqLayer` (named);
- a mapping with construct keys -> `Construct`: exactly one of `body:` (a
  layer), `concat:` or `add:` (branches that all read the same input), plus
  optional `from:` (where the input comes from) and `repeat:` (copies).

The pydantic models validate every mapping's keys and value types; the layer
tree itself is recursive and built by `validate.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from .errors import Location
from .expr import CallText, Expr
from .load import Source


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Scalar = Union[StrictBool, StrictInt, StrictFloat, StrictStr]
VarValue = Union[Scalar, list[Scalar]]
ShapeList = Annotated[list[Annotated[int, Field(ge=1, strict=True)]], Field(min_length=1, max_length=3)]
Count = Annotated[int, Field(ge=0, strict=True)]


class ExpectModel(_Strict):
    """`expect:` assertions, checked by `archspec check` and `archspec build`."""

    params: Count | None = Field(None, description="parameters of the whole network, heads included")
    params_inference: Count | None = Field(
        None, description="parameters used at inference (training-only heads left out)")
    macs: Count | None = Field(None, description="multiply-accumulates of the inference graph, one image")
    output: ShapeList | None = Field(None, description="shape of the main output, batch left out")
    outputs: dict[str, ShapeList] | None = Field(None, description="shapes of head outputs by head name")
    shapes: dict[str, ShapeList] | None = Field(None, description="output shapes of named nodes")
    min_input: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)] | None = Field(
        None, description="smallest input H×W the network accepts, training-only heads included")
    min_input_inference: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)] | None = (
        Field(None, description="smallest input H×W of the inference graph"))


class SpecModel(_Strict):
    """The top level of a spec file."""

    archspec: Literal[1] = Field(description="spec language version")
    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")]
    doc: str | None = None
    input: ShapeList = Field(description="input shape C, H, W (the batch is symbolic)")
    vars: dict[str, VarValue] = Field(default_factory=dict)
    blocks: dict[str, Any] = Field(default_factory=dict)
    body: Any = Field(description="the main network: a layer")
    heads: dict[str, Any] = Field(default_factory=dict)
    expect: ExpectModel | None = None


class ConstructModel(_Strict):
    """Keys of a construct mapping (a layer with `body:`, `concat:` or `add:`)."""

    body: Any = None
    concat: Any = None
    add: Any = None
    from_: StrictStr | list[StrictStr] | None = Field(None, alias="from")
    repeat: StrictInt | StrictStr | None = None


class BlockModel(ConstructModel):
    """A template under `blocks:`: parameters plus a construct."""

    params: list[StrictStr | StrictInt] = Field(default_factory=list)
    doc: str | None = None
    columns: list[StrictStr] | None = Field(
        None, description="labels of the parameters in a paper-style table")


class HeadModel(ConstructModel):
    """An output head under `heads:`; `from:` says which node it reads."""

    train_only: StrictBool = False
    loss_weight: StrictInt | StrictFloat = 1.0
    when: StrictBool | StrictStr | None = Field(
        None, description="an expression over vars; the head exists only where it is true (e.g. $aux_logits)")


CONSTRUCT_KEYS = ("body", "concat", "add", "from", "repeat")
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
class Construct:
    kind: Literal["body", "concat", "add"]
    body: Layer | None
    branches: tuple[Item, ...]
    from_: tuple[RefText, ...] | None
    repeat: Expr | None
    loc: Location


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
    """A validated spec: its layer trees, templates, evaluated vars and assertions."""

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

    @property
    def file(self) -> str:
        return self.source.file

    def expect_loc(self, *path: str | int) -> Location:
        return self.source.loc(("expect",) + path)

    def with_overrides(self, **overrides: Any) -> Spec:
        from .validate import validate

        return validate(self.source, {**self.overrides, **overrides})


