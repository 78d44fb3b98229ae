"""Stage 2, validate: loaded data -> `Spec`, with every fault mapped to file:line:col.

pydantic checks the keys and value types of each mapping (spec, block, head,
construct, expect); this module walks the recursive layer trees, parses call
strings, checks names, and evaluates `vars` with the CLI/Python overrides.
All faults of a file are collected before `SpecError` is raised.
"""

from __future__ import annotations

import difflib
import keyword
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import Diagnostics, did_you_mean
from .expr import CallText, ExprError, Lit, evaluate, parse_call, parse_expr, parse_param
from .load import Source, YamlPath
from .ops import REGISTRY
from .ops.common import MAX_ELEMENTS, elements
from .spec import (
    BLOCK_ONLY_KEYS,
    CONSTRUCT_KEYS,
    HEAD_ONLY_KEYS,
    NAME_PATTERN,
    REF_PATTERN,
    BlockDef,
    BlockModel,
    CallLayer,
    Construct,
    ConstructModel,
    HeadDef,
    HeadModel,
    Item,
    Layer,
    Param,
    RefText,
    SeqLayer,
    Spec,
    SpecModel,
)

NAME = re.compile(NAME_PATTERN)
REF = re.compile(REF_PATTERN)

RESERVED_NAMES = frozenset({
    "input", "forward", "training", "train", "eval", "to", "cuda", "cpu", "xpu", "ipu", "mtia", "type",
    "float", "double", "half", "bfloat16", "apply", "parameters", "named_parameters", "buffers",
    "named_buffers", "children", "named_children", "modules", "named_modules", "state_dict",
    "load_state_dict", "zero_grad", "requires_grad_", "share_memory", "extra_repr", "add_module",
    "register_module", "register_buffer", "register_parameter", "get_submodule", "set_submodule",
    "get_parameter", "get_buffer", "get_extra_state", "set_extra_state", "to_empty", "compile",
    "graph", "code", "recompile", "meta", "print_readable", "delete_submodule",
    "delete_all_unused_submodules", "add_submodule", "dump_patches", "call_super_init",
    "register_forward_hook", "register_forward_pre_hook", "register_backward_hook",
    "register_full_backward_hook", "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "to_folder", "T_destination", "shape_env",
    "loss_weights", "heads", "train_graph", "train_code", "spec_name", "typed",
}) | frozenset(keyword.kwlist)  # `self.class` cannot be written in the generated forward()
"""Names a node cannot take: attributes of the emitted module (tests/test_validate.py keeps this complete
for the installed torch). Names starting with `_` are refused too."""


def validate(source: Source, overrides: dict[str, Any] | None = None) -> Spec:
    """Validate loaded data; raises SpecError listing every fault found."""
    v = _Validator(source)
    spec = v.run(overrides or {})
    v.diags.raise_if_errors({source.file: source.text})
    assert spec is not None
    return spec


class _Validator:
    def __init__(self, source: Source):
        self.src = source
        self.diags = Diagnostics()
        self.calls: dict[str, CallText] = {}
        """Parsed call strings by text: a block used N times is one text written N times, parsed once."""

    # -- pydantic ---------------------------------------------------------
    def model(self, cls: type[BaseModel], raw: Any, path: YamlPath) -> BaseModel | None:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            wrong: dict[YamlPath, list[Any]] = {}
            for err in exc.errors():
                loc = _data_path(raw, err["loc"], keep_last=err["type"] in ("missing", "extra_forbidden"))
                if err["type"] in ("missing", "extra_forbidden"):
                    self._key_error(cls, err["type"], loc, path)
                else:  # a union reports one error per member: say them once, together
                    wrong.setdefault(loc, []).append(err)
            for loc, errs in wrong.items():
                self._wrong_value(path + loc, _get(raw, loc), errs)
            return None

    def _wrong_value(self, full: YamlPath, value: Any, errs: list[Any]) -> None:
        """One `wrong-type` for a value pydantic refused: the path once, what goes there, what was written."""
        expected = list(dict.fromkeys(_expected(e) for e in errs))
        kind = _kind(value)
        is_type = all(e["type"].endswith(("_type", "_parsing")) for e in errs)
        hint = None
        if isinstance(value, str) and any(e["type"].startswith(("int_", "float_")) for e in errs) \
                and re.fullmatch(r"[-+]?[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?", value.strip()):
            hint = "a quoted number is a string: write it without quotes (and without _, which YAML 1.2 reads as text)"
        self.diags.error("wrong-type", "wrong type of value" if is_type else "value not allowed",
                         loc=self.src.loc(full), path=_dotted(full), expected=_or(expected),
                         found=f"{_short(value)} ({kind})", hint=hint)

    def _key_error(self, cls: type[BaseModel], kind: str, loc: YamlPath, path: YamlPath) -> None:
        full = path + loc
        field = str(loc[-1]) if loc else ""
        if kind == "extra_forbidden":
            names = [f.alias or n for n, f in _fields(cls, loc[:-1]).items()]
            self.diags.error("unknown-field", f"unknown key '{field}'", loc=self.src.key_loc(full),
                             path=_dotted(full[:-1]), expected="one of: " + ", ".join(names),
                             found=field, hint=did_you_mean(field, names), span=len(field))
        else:
            self.diags.error("missing-field", f"missing required key '{field}'",
                             loc=self.src.loc(full[:-1]), path=_dotted(full[:-1]))

    # -- top level --------------------------------------------------------
    def run(self, overrides: dict[str, Any]) -> Spec | None:
        raw = self.src.data
        if not isinstance(raw, dict):
            self.diags.error("wrong-type", "a spec must be a YAML mapping with keys archspec, name, input, body",
                             loc=self.src.loc(()), found=_short(raw))
            return None
        top = self.model(SpecModel, {k: v for k, v in raw.items()}, ())
        blocks = {name: b for name, b in ((n, self.block(n, r)) for n, r in _dict(raw.get("blocks"))) if b}
        body = self.layer(raw["body"], ("body",)) if "body" in raw else None
        heads = {name: h for name, h in ((n, self.head(n, r)) for n, r in _dict(raw.get("heads"))) if h}
        if not isinstance(top, SpecModel) or body is None:
            return None
        spec_input, env = self.vars(top, overrides)
        return Spec(source=self.src, name=top.name, input=spec_input, vars=env, blocks=blocks, body=body,
                    heads=heads, expect=top.expect, doc=top.doc, overrides=dict(overrides))

    def vars(self, top: SpecModel, overrides: dict[str, Any]) -> tuple[tuple[int, ...], dict[str, Any]]:
        env: dict[str, Any] = {}
        for name, value in top.vars.items():
            path = ("vars", name)
            if not NAME.match(name):
                self.diags.error("bad-name", f"variable name '{name}' is not a plain name",
                                 loc=self.src.key_loc(path), expected="letters, digits and _")
            env[name] = self.value(value, path, env)
        spec_input = tuple(top.input)
        for name, value in overrides.items():
            if name == "input":
                spec_input = self._override_input(value)
            elif name not in env:
                self.diags.error("unknown-variable", f"--set {name}: the spec declares no variable '{name}'",
                                 loc=self.src.loc(("vars",)) if "vars" in self.src.data else None,
                                 expected="one of: " + (", ".join(env) or "(no vars declared)") + ", input",
                                 hint=did_you_mean(name, list(env) + ["input"]))
            else:
                env[name] = value
        if elements(spec_input) > MAX_ELEMENTS:
            self.diags.error("tensor-too-large", "the input has more elements than a tensor of one image may have",
                             loc=self.src.loc(("input",)), expected=f"at most {MAX_ELEMENTS:,} (2^31 - 1) elements",
                             found=f"{'×'.join(map(str, spec_input))} = {elements(spec_input):,}")
        return spec_input, env

    def _override_input(self, value: Any) -> tuple[int, ...]:
        ok = (isinstance(value, (list, tuple)) and 1 <= len(value) <= 3
              and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value))
        if not ok:
            self.diags.error("wrong-type", "--set input: the input shape must be a list of 1 to 3 positive integers",
                             expected="e.g. input=[3,299,299]", found=_short(value))
            return (1,)
        return tuple(value)

    def value(self, raw: Any, path: YamlPath, env: dict[str, Any]) -> Any:
        """A var value: strings are expressions over earlier vars (bare words stay strings)."""
        if not isinstance(raw, str):
            return raw
        try:
            return evaluate(parse_expr(raw), env)
        except ExprError as exc:
            self.diags.error(exc.code, exc.message, loc=self.src.loc_in(path, exc.pos), path=_dotted(path),
                             hint=exc.hint, span=exc.span)
            return None

    # -- blocks and heads -------------------------------------------------
    def block(self, name: str, raw: Any) -> BlockDef | None:
        path: YamlPath = ("blocks", name)
        self.name_ok(name, path, what="block")
        if name in REGISTRY:
            self.diags.error("block-shadows-op", f"block '{name}' has the name of a primitive op",
                             loc=self.src.key_loc(path), hint=f"rename the block, e.g. '{name}_block'")
        if not isinstance(raw, dict):
            self.diags.error("wrong-type", f"block '{name}' must be a mapping with params and body/concat/add",
                             loc=self.src.loc(path), found=_short(raw))
            return None
        model = self.model(BlockModel, raw, path)
        construct = self.construct({k: v for k, v in raw.items() if k not in BLOCK_ONLY_KEYS}, path, model)
        if not isinstance(model, BlockModel) or construct is None:
            return None
        if construct.from_ is not None:
            self.diags.error("unknown-field", "a block definition cannot say `from:`; write it where the block is used",
                             loc=self.src.key_loc(path + ("from",)))
        params = tuple(p for p in (self.param(str(p), path + ("params", i)) for i, p in enumerate(model.params)) if p)
        self._check_params(params, path)
        if model.columns is not None and len(model.columns) != len(params):
            self.diags.error("wrong-type", f"block '{name}' has {len(params)} params but {len(model.columns)} columns",
                             loc=self.src.loc(path + ("columns",)), expected=f"{len(params)} column labels")
        return BlockDef(name, params, construct, self.src.key_loc(path), model.doc,
                        tuple(model.columns) if model.columns else None)

    def param(self, text: str, path: YamlPath) -> Param | None:
        try:
            name, default = parse_param(text)
        except ExprError as exc:
            self.diags.error(exc.code, exc.message, loc=self.src.loc_in(path, exc.pos), hint=exc.hint)
            return None
        self.name_ok(name, path, what="parameter")
        return Param(name, default, self.src.loc(path))

    def _check_params(self, params: tuple[Param, ...], path: YamlPath) -> None:
        seen: set[str] = set()
        defaults = False
        for p in params:
            if p.name in seen:
                self.diags.error("duplicate-name", f"parameter '{p.name}' is declared twice", loc=p.loc)
            seen.add(p.name)
            if p.default is None and defaults:
                self.diags.error("wrong-type", f"parameter '{p.name}' without a default follows one with a default",
                                 loc=p.loc, hint="put parameters with defaults last")
            defaults = defaults or p.default is not None

    def head(self, name: str, raw: Any) -> HeadDef | None:
        path: YamlPath = ("heads", name)
        self.name_ok(name, path, what="head")
        if not isinstance(raw, dict):
            self.diags.error("wrong-type", f"head '{name}' must be a mapping with from and body",
                             loc=self.src.loc(path), found=_short(raw))
            return None
        model = self.model(HeadModel, raw, path)
        construct = self.construct({k: v for k, v in raw.items() if k not in HEAD_ONLY_KEYS}, path, model)
        if construct is not None and construct.from_ is None:
            self.diags.error("missing-field", f"head '{name}' needs `from:`, the node it reads",
                             loc=self.src.key_loc(path), hint="e.g. from: inception4a")
        if not isinstance(model, HeadModel) or construct is None:
            return None
        when = None
        if model.when is not None:
            when = self.repeat(model.when, path + ("when",)) if isinstance(model.when, str) else Lit(0, model.when)
        return HeadDef(name, construct, model.train_only, float(model.loss_weight), self.src.key_loc(path), when)

    # -- layers -----------------------------------------------------------
    def layer(self, raw: Any, path: YamlPath) -> Layer | None:
        if isinstance(raw, str):
            return self.call(raw, path)
        if isinstance(raw, list):
            if not raw:
                self.diags.error("empty", "an empty list is not a layer", loc=self.src.loc(path))
                return None
            items = [self.item(str(i), x, path + (i,), self.src.loc(path + (i,))) for i, x in enumerate(raw)]
            return SeqLayer(tuple(i for i in items if i), self.src.loc(path), named=False)
        if isinstance(raw, dict):
            if _is_construct(raw):
                return self.construct(raw, path)
            if not raw:
                self.diags.error("empty", "an empty mapping is not a layer", loc=self.src.loc(path))
                return None
            items = []
            for name, x in raw.items():
                self.name_ok(name, path + (name,))
                items.append(self.item(name, x, path + (name,), self.src.key_loc(path + (name,))))
            return SeqLayer(tuple(i for i in items if i), self.src.loc(path), named=True)
        self.diags.error("wrong-type", "expected a layer: a call such as conv(64, 3), a list or a mapping",
                         loc=self.src.loc(path), path=_dotted(path), found=_short(raw), hint=self.flow_hint(path))
        return None

    def item(self, name: str, raw: Any, path: YamlPath, loc: Any) -> Item | None:
        layer = self.layer(raw, path)
        return Item(name, layer, loc) if layer is not None else None

    def call(self, raw: str, path: YamlPath) -> CallLayer | None:
        try:
            call = self.calls.get(raw) or self.calls.setdefault(raw, parse_call(raw))
        except ExprError as exc:
            self.diags.error(exc.code, exc.message, loc=self.src.loc_in(path, exc.pos), path=_dotted(path),
                             hint=self.flow_hint(path) or exc.hint, span=exc.span)
            return None
        return CallLayer(call, self.src.loc(path), self.src.quoted.get(path, False))

    def construct(self, raw: dict, path: YamlPath, model: Any = "check") -> Construct | None:
        """Parse a construct; `model` is its already validated options, if the caller has them."""
        if isinstance(model, str):
            model = self.model(ConstructModel, raw, path)
        kinds = [k for k in ("body", "concat", "add") if k in raw]
        if len(kinds) != 1:
            msg = "needs one of body, concat or add" if not kinds else f"has both {kinds[0]} and {kinds[1]}"
            self.diags.error("bad-construct", f"a construct {msg}", loc=self.src.loc(path), path=_dotted(path),
                             hint="body: runs layers in order; concat:/add: merge branches that read one input")
            return None
        if not isinstance(model, ConstructModel):
            return None
        kind = kinds[0]
        body: Layer | None = None
        branches: tuple[Item, ...] = ()
        if kind == "body":
            body = self.layer(raw["body"], path + ("body",))
            if body is None:
                return None
        else:
            branches = self.branches(raw[kind], path + (kind,))
        repeat = self.repeat(model.repeat, path + ("repeat",)) if model.repeat is not None else None
        if repeat is not None and kind != "body":
            self.diags.error("bad-construct", "repeat: goes with body:", loc=self.src.key_loc(path + ("repeat",)))
        refs = None
        if model.from_ is not None:
            texts = [model.from_] if isinstance(model.from_, str) else model.from_
            sub = [()] if isinstance(model.from_, str) else [(i,) for i in range(len(texts))]
            refs = tuple(self.ref(t, path + ("from",) + s) for t, s in zip(texts, sub, strict=True))
        return Construct(kind, body, branches, refs, repeat, self.src.loc(path))  # type: ignore[arg-type]

    def branches(self, raw: Any, path: YamlPath) -> tuple[Item, ...]:
        if isinstance(raw, list) and raw:
            items = [self.item(str(i), x, path + (i,), self.src.loc(path + (i,))) for i, x in enumerate(raw)]
        elif isinstance(raw, dict) and raw:
            items = []
            for name, x in raw.items():
                self.name_ok(name, path + (name,), what="branch")
                items.append(self.item(name, x, path + (name,), self.src.key_loc(path + (name,))))
        else:
            self.diags.error("wrong-type", "branches must be a non-empty list or mapping of layers",
                             loc=self.src.loc(path), path=_dotted(path), found=_short(raw))
            return ()
        return tuple(i for i in items if i)

    def repeat(self, raw: int | str, path: YamlPath) -> Any:
        """Parse an expression-valued key (`repeat:`, `when:`)."""
        try:
            return parse_expr(str(raw))
        except ExprError as exc:
            self.diags.error(exc.code, exc.message, loc=self.src.loc_in(path, exc.pos), hint=exc.hint)
            return None

    def ref(self, text: str, path: YamlPath) -> RefText:
        if not REF.match(text):
            self.diags.error("bad-reference", f"'{text}' is not a node name or path",
                             loc=self.src.loc(path), expected="a name such as inception4a or a path such as a/b")
        return RefText(text, self.src.loc(path))

    def flow_hint(self, path: YamlPath) -> str | None:
        if not self.src.in_flow(path):
            return None
        return ("inside [...] or {...} every comma splits an item: quote the call, \"cbr(64, 3)\", "
                "or write it on its own line")

    def name_ok(self, name: str, path: YamlPath, what: str = "node") -> bool:
        if not NAME.match(name):
            self.diags.error("bad-name", f"{what} name '{name}' is not a plain name", loc=self.src.key_loc(path),
                             expected="letters, digits and _, not starting with a digit", found=name,
                             hint=self.flow_hint(path))
            return False
        if what not in ("block", "parameter") and (name in RESERVED_NAMES or name.startswith("_")):
            self.diags.error("reserved-name", f"'{name}' is reserved and cannot name a {what}",
                             loc=self.src.key_loc(path), hint=f"rename it, e.g. '{name.strip('_')}_'",
                             expected="a name that is not a Python keyword, an attribute of torch modules, "
                                      "nor starts with _")
            return False
        return True


def _is_construct(raw: dict) -> bool:
    """A mapping is a construct if it has body/concat/add and no other keys but construct keys.

    So a sequence may name a layer `repeat` or `add` (as timm does). A key that is a
    near-miss of a construct key (`repeats`) still makes a construct, so that the typo
    is reported as an unknown key with a suggestion.
    """
    if not any(k in ("body", "concat", "add") for k in raw):
        return False
    others = [k for k in raw if k not in CONSTRUCT_KEYS]
    return all(difflib.get_close_matches(k, CONSTRUCT_KEYS, n=1, cutoff=0.75) for k in others)


def _data_path(raw: Any, loc: tuple, keep_last: bool) -> YamlPath:
    """The part of a pydantic error location that indexes into the data (union member tags dropped)."""
    out: list[str | int] = []
    cur = raw
    for i, part in enumerate(loc):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
        elif not (keep_last and i == len(loc) - 1):
            continue
        out.append(part)
    return tuple(out)


def _get(raw: Any, path: YamlPath) -> Any:
    for part in path:
        raw = raw[part]
    return raw


def _dict(raw: Any) -> list[tuple[str, Any]]:
    return list(raw.items()) if isinstance(raw, dict) else []


def _fields(cls: type[BaseModel], loc: tuple) -> dict:
    model: Any = cls
    for part in loc:
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        ann = getattr(field, "annotation", None)
        if ann is None:
            break
        for candidate in (ann, *getattr(ann, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
                break
    return dict(model.model_fields) if hasattr(model, "model_fields") else {}


def _dotted(path: YamlPath) -> str:
    return ".".join(str(p) for p in path)


_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "a whole number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "float_type": "a number", "float_parsing": "a number",
    "string_type": "a string", "list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping",
    "greater_than_equal": "a number ≥ {ge}", "greater_than": "a number > {gt}",
    "less_than_equal": "a number ≤ {le}", "less_than": "a number < {lt}",
    "too_short": "at least {min_length} items", "too_long": "at most {max_length} items",
    "literal_error": "{expected}", "string_pattern_mismatch": "a string matching {pattern}",
}
"""What a value must be, in words, for each pydantic error type a spec can hit; others keep pydantic's words."""


def _expected(err: Any) -> str:
    template = _EXPECTED.get(err["type"])
    if template is None:
        return str(err["msg"]).lower().removeprefix("input should be ")
    try:
        return template.format(**err.get("ctx", {}))
    except (KeyError, IndexError):
        return str(err["msg"]).lower().removeprefix("input should be ")


def _kind(value: Any) -> str:
    """A YAML value's type in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping"}.get(
        type(value), type(value).__name__)


def _or(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
