"""Stage 2, validate: loaded data -> `Spec`, with every fault mapped to file:line:col.

pydantic checks the keys and value types of each mapping (spec, block, head,
construct, expect); this module walks the recursive layer trees, parses call
strings, checks names, and evaluates `vars` with the CLI/Python overrides.
All faults of a file are collected before `SpecError` is raised.
"""

from __future__ import annotations

import difflib
import keyword
import os
import re
import stat
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import Diagnostics, SpecError, did_you_mean
from .expr import CallText, Expr, ExprError, Lit, Name, evaluate, parse_call, parse_expr, parse_param
from .load import Source, YamlPath, load_file
from .ops import REGISTRY
from .ops.common import MAX_ELEMENTS, elements
from .spec import (
    BLOCK_ONLY_KEYS,
    CONSTRUCT_KEYS,
    HEAD_ONLY_KEYS,
    ITEM_PATTERN,
    KINDS,
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
    Pattern,
    RefText,
    SeqLayer,
    Spec,
    SpecModel,
)

NAME = re.compile(NAME_PATTERN)
ITEM = re.compile(ITEM_PATTERN)
REF = re.compile(REF_PATTERN)
SPEC_SUFFIXES = (".yaml", ".yml")
LIBRARY_KEYS = ("archspec", "import", "doc", "blocks", "vars")

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
    "loss_weights", "train_graph", "train_code", "spec_name", "typed",
}) | frozenset(keyword.kwlist)  # `self.class` cannot be written in the generated forward()
"""Names a node cannot take: `input` (a reference to the input), the attributes of the emitted module
(add_module refuses them; tests/test_validate.py keeps this exactly the set of the installed torch) and
Python's keywords (torch.fx cannot write `self.class` in forward). Names starting with `_` are refused too:
torch keeps its private attributes there (`_modules`, `_version`, ...), and they change between versions."""

RESERVED_WHY = ("a name that is not `input`, an attribute of the built module (" + ", ".join(sorted(
    n for n in RESERVED_NAMES if n != "input" and not keyword.iskeyword(n))) + "), a Python keyword, "
                "nor starts with _")


def validate(source: Source, overrides: dict[str, Any] | None = None) -> Spec:
    """Validate loaded data; raises SpecError listing every fault found."""
    v = _Validator(source)
    spec = v.run(overrides or {})
    v.diags.raise_if_errors({**v.imported, source.file: source.text})
    assert spec is not None
    return spec


def is_library(source: Source) -> bool:
    """A file of blocks and vars only, made to be imported (it has none of a spec's name, input, body, ...)."""
    raw = source.data
    return isinstance(raw, dict) and not any(k in raw for k in _SPEC_ONLY_KEYS)


def validate_library(source: Source) -> dict[str, BlockDef]:
    """Validate a library file as an importing spec would see it: its blocks, its vars and what it imports.

    Raises SpecError listing every fault found; returns the blocks it defines (imported ones included).
    """
    v = _Validator(source)
    v.model(SpecModel, dict(source.data), ())
    blocks, var_defs = v.definitions(source.data, (str(Path(source.file).resolve()),))
    v.vars(var_defs, {})
    v.diags.raise_if_errors({**v.imported, source.file: source.text})
    return blocks


_SPEC_ONLY_KEYS = ("name", "input", "body", "heads", "expect")


class _Validator:
    def __init__(self, source: Source, importer: _Validator | None = None):
        self.src = source
        self.diags: Diagnostics = Diagnostics() if importer is None else importer.diags
        self.calls: dict[str, CallText] = {} if importer is None else importer.calls
        """Parsed call strings by text: a block used N times is one text written N times, parsed once."""
        self.imported: dict[str, str] = {} if importer is None else importer.imported
        """The text of every imported file, by its name in diagnostics."""
        self.seen: set[str] = set() if importer is None else importer.seen
        """Resolved paths of the files imported so far: a file imported twice is read once."""

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
        blocks, var_defs = self.definitions(raw, (str(Path(self.src.file).resolve()),))
        if not any(k in raw for k in _SPEC_ONLY_KEYS):
            self.diags.error("missing-field", "missing required key 'body': this file is a library (blocks and "
                             "vars only), to be imported by a spec, not built", loc=self.src.loc(()),
                             hint=_import_hint(Path(self.src.file)))
        else:
            for key in ("name", "input", "body"):
                if key not in raw:
                    self.diags.error("missing-field", f"missing required key '{key}'", loc=self.src.loc(()),
                                     path=None)
        body = self.layer(raw["body"], ("body",)) if "body" in raw else None
        heads = {name: h for name, h in ((n, self.head(n, r)) for n, r in _dict(raw.get("heads"))) if h}
        if not isinstance(top, SpecModel) or body is None or top.name is None or top.input is None:
            return None
        env = self.vars(var_defs, overrides)
        spec_input = self._override_input(overrides["input"]) if "input" in overrides else tuple(top.input)
        if elements(spec_input) > MAX_ELEMENTS:
            self.diags.error("tensor-too-large", "the input has more elements than a tensor of one image may have",
                             loc=self.src.loc(("input",)), expected=f"at most {MAX_ELEMENTS:,} (2^31 - 1) elements",
                             found=f"{'×'.join(map(str, spec_input))} = {elements(spec_input):,}")
        return Spec(source=self.src, name=top.name, input=spec_input, vars=env, blocks=blocks, body=body,
                    heads=heads, expect=top.expect, doc=top.doc, overrides=dict(overrides),
                    imported=dict(self.imported))

    def definitions(self, raw: dict, stack: tuple[str, ...]) -> tuple[dict[str, BlockDef], list[tuple]]:
        """The blocks and the var definitions of this file and of the files it imports, theirs first.

        A later definition of a name replaces an earlier one: the importing file's own win.
        Var definitions are `(validator, name, raw value)`, evaluated in that order by `vars`.
        """
        blocks: dict[str, BlockDef] = {}
        var_defs: list[tuple[_Validator, str, Any]] = []
        for child in self.imports(raw.get("import"), stack):
            child_blocks, child_vars = child.definitions(child.src.data, stack + (child.key,))
            blocks.update(child_blocks)
            var_defs += child_vars
        blocks.update({name: b for name, b in ((n, self.block(n, r)) for n, r in _dict(raw.get("blocks"))) if b})
        var_defs += [(self, name, value) for name, value in _dict(raw.get("vars"))]
        return blocks, var_defs

    key = ""
    """The resolved path of an imported file."""

    def imports(self, raw: Any, stack: tuple[str, ...]) -> list[_Validator]:
        """Load the files named by `import:` (a path or a list of paths, relative to this file)."""
        if raw is None:
            return []
        entries = [(raw, ("import",))] if isinstance(raw, str) else \
            [(r, ("import", i)) for i, r in enumerate(raw)] if isinstance(raw, list) else []
        out = []
        for rel, path in entries:
            if not isinstance(rel, str):
                continue  # pydantic reported it
            child = self.import_one(rel, path, stack)
            if child is not None:
                out.append(child)
        return out

    def import_one(self, rel: str, path: YamlPath, stack: tuple[str, ...]) -> _Validator | None:
        loc = self.src.loc(path)
        if Path(rel).is_absolute() or rel.startswith("~") or re.match(r"^[A-Za-z]:", rel):
            self.diags.error("bad-import", f"import '{rel}' is an absolute path", loc=loc,
                             hint="write the path relative to this file, e.g. families/resnet.yaml")
            return None
        if not rel.endswith(SPEC_SUFFIXES):
            self.diags.error("bad-import", f"import '{rel}' is not a spec file", loc=loc,
                             expected="a path ending in .yaml or .yml", found=rel)
            return None
        target = Path(self.src.file).parent / rel
        shown = os.path.normpath(target)
        try:
            mode = os.stat(target).st_mode
        except OSError as exc:
            self.diags.error("file-not-found", f"cannot read imported file '{rel}': {exc.strerror or exc}",
                             loc=loc, found=shown, hint="the path is relative to the importing file")
            return None
        if not stat.S_ISREG(mode):
            self.diags.error("bad-import", f"import '{rel}' is not a regular file", loc=loc, found=shown)
            return None
        key = str(target.resolve())
        if not key.endswith(SPEC_SUFFIXES):  # a link named .yaml to another kind of file
            self.diags.error("bad-import", f"import '{rel}' leads to a file that is not a spec file", loc=loc,
                             found=key, expected="a path ending in .yaml or .yml")
            return None
        if key in stack:
            chain = " → ".join(os.path.basename(k) for k in stack[stack.index(key):] + (key,))
            self.diags.error("import-cycle", f"import '{rel}' makes a cycle ({chain})", loc=loc,
                             hint="move what both files need into a third file that both import")
            return None
        if key in self.seen:
            return None
        self.seen.add(key)
        try:
            source = load_file(target, display=shown)
        except SpecError as exc:
            self.diags.items.extend(exc.diagnostics)
            self.imported.update(exc.sources)
            return None
        self.imported[source.file] = source.text
        child = _Validator(source, importer=self)
        child.key = key
        data = source.data
        if not isinstance(data, dict):
            self.diags.error("bad-import", f"imported file '{rel}' is not a mapping", loc=source.loc(()),
                             found=_short(data))
            return None
        extra = [k for k in data if k not in LIBRARY_KEYS]
        for k in extra:
            self.diags.error("bad-import", f"imported file '{rel}' has '{k}': a library holds only "
                             + ", ".join(LIBRARY_KEYS), loc=source.key_loc((k,)), found=k,
                             notes=[(loc, "imported here")])
        child.model(SpecModel, {k: v for k, v in data.items() if k not in extra}, ())
        return None if extra else child

    def vars(self, var_defs: list[tuple], overrides: dict[str, Any]) -> dict[str, Any]:
        """Evaluate the vars in order; a var set by `--set` takes that value there, so later vars follow it."""
        env: dict[str, Any] = {}
        for owner, name, value in var_defs:
            path = ("vars", name)
            if not NAME.match(name):
                owner.diags.error("bad-name", f"variable name '{name}' is not a plain name",
                                  loc=owner.src.key_loc(path), expected="letters, digits and _")
            env[name] = overrides[name] if name in overrides else owner.value(value, path, env)
        for name in overrides:
            if name != "input" and name not in env:
                self.diags.error("unknown-variable", f"--set {name}: the spec declares no variable '{name}'",
                                 loc=self.src.loc(("vars",)) if "vars" in self.src.data else None,
                                 expected="one of: " + (", ".join(env) or "(no vars declared)") + ", input",
                                 hint=did_you_mean(name, list(env) + ["input"]))
        return env

    def _override_input(self, value: Any) -> tuple[int, ...]:
        ok = (isinstance(value, (list, tuple)) and 1 <= len(value) <= 3
              and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value))
        if not ok:
            self.diags.error("wrong-type", "--set input: the input shape must be a list of 1 to 3 positive integers",
                             expected="e.g. input=[3,299,299]", found=_short(value))
            return (1,)
        return tuple(value)

    def value(self, raw: Any, path: YamlPath, env: dict[str, Any]) -> Any:
        """A var value: strings are expressions over earlier vars (bare words stay strings), in tables too."""
        if isinstance(raw, list):
            return [self.value(v, path + (i,), env) for i, v in enumerate(raw)]
        if isinstance(raw, dict):
            return {k: self.value(v, path + (k,), env) for k, v in raw.items()}
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
        for key in ("from", "name"):
            if key in raw:
                self.diags.error("unknown-field", f"a block definition cannot say `{key}:`; write it where the block "
                                 "is used", loc=self.src.key_loc(path + (key,)))
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
        kinds = [k for k in KINDS if k in raw]
        if len(kinds) != 1:
            msg = "needs one of body, splice, concat or add" if not kinds else f"has both {kinds[0]} and {kinds[1]}"
            self.diags.error("bad-construct", f"a construct {msg}", loc=self.src.loc(path), path=_dotted(path),
                             hint="body: runs layers in order; splice: puts its items into the enclosing list; "
                                  "concat:/add: merge branches that read one input")
            return None
        if not isinstance(model, ConstructModel):
            return None
        kind = kinds[0]
        body: Layer | None = None
        branches: tuple[Item, ...] = ()
        if kind in ("body", "splice"):
            body = self.layer(raw[kind], path + (kind,))
            if body is None:
                return None
        else:
            branches = self.branches(raw[kind], path + (kind,))
        repeat = self.repeat(model.repeat, path + ("repeat",)) if model.repeat is not None else None
        if model.repeat is not None and kind not in ("body", "splice"):
            self.diags.error("bad-construct", "repeat: goes with body: or splice:",
                             loc=self.src.key_loc(path + ("repeat",)))
        for key in ("start", "names"):
            if key in raw and model.repeat is None:
                self.diags.error("bad-construct", f"{key}: goes with repeat:", loc=self.src.key_loc(path + (key,)),
                                 hint="e.g. {repeat: 6, start: 1, names: denselayer{i}, body: ...}")
        start = self.repeat(model.start, path + ("start",)) if model.start is not None else None
        when = None
        if model.when is not None:
            when = self.repeat(model.when, path + ("when",)) if isinstance(model.when, str) else Lit(0, model.when)
        names = self.pattern(model.names, path + ("names",), index=True) if model.names is not None else None
        name = self.pattern(model.name, path + ("name",), index=False) if model.name is not None else None
        refs = None
        if model.from_ is not None:
            texts = [model.from_] if isinstance(model.from_, str) else model.from_
            sub = [()] if isinstance(model.from_, str) else [(i,) for i in range(len(texts))]
            refs = tuple(self.ref(t, path + ("from",) + s) for t, s in zip(texts, sub, strict=True))
        return Construct(kind, body, branches, refs, repeat, self.src.loc(path), when=when,  # type: ignore[arg-type]
                         start=start, names=names, name=name)

    def pattern(self, text: str, path: YamlPath, index: bool) -> Pattern | None:
        """Parse a name pattern: text of `[A-Za-z0-9_-]` with `{i}` (with `index`) or `{EXPR}` parts."""
        parts: list[str | Expr] = []
        pos = 0
        ok = True
        for m in re.finditer(r"\{([^{}]*)\}|([^{}]+)|(.)", text):
            if m.group(2) is not None:
                if not re.fullmatch(r"[A-Za-z0-9_-]+", m.group(2)):
                    bad = next(i for i, ch in enumerate(m.group(2)) if not re.match(r"[A-Za-z0-9_-]", ch))
                    self.diags.error("bad-name", f"'{m.group(2)[bad]}' cannot be part of a name",
                                     loc=self.src.loc_in(path, m.start() + bad), found=text,
                                     expected="letters, digits, _ and -, with {i} or {EXPR} parts")
                    ok = False
                parts.append(m.group(2))
            elif m.group(1) is not None:
                inner = m.group(1).strip()
                if index and inner == "i":
                    parts.append(Name(m.start(1), "i"))
                    continue
                try:
                    parts.append(_shift(parse_expr(m.group(1)), m.start(1)))
                except ExprError as exc:
                    self.diags.error(exc.code, exc.message, loc=self.src.loc_in(path, m.start(1) + exc.pos),
                                     hint=exc.hint)
                    ok = False
            else:
                self.diags.error("bad-name", f"unmatched '{m.group(3)}' in a name pattern",
                                 loc=self.src.loc_in(path, m.start()), found=text)
                ok = False
            pos = m.end()
        del pos
        if index and not any(isinstance(p, Name) for p in parts):
            self.diags.error("bad-name", "names: needs {i}, the copy's number", loc=self.src.loc(path), found=text,
                             hint="e.g. names: denselayer{i}")
            ok = False
        return Pattern(tuple(parts), self.src.loc(path)) if ok else None

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
                             expected=RESERVED_WHY)
            return False
        return True


def _is_construct(raw: dict) -> bool:
    """A mapping is a construct if it has body/concat/add and no other keys but construct keys.

    So a sequence may name a layer `repeat` or `add` (as timm does). A key that is a
    near-miss of a construct key (`repeats`) still makes a construct, so that the typo
    is reported as an unknown key with a suggestion.
    """
    if not any(k in KINDS for k in raw):
        return False
    others = [k for k in raw if k not in CONSTRUCT_KEYS]
    return all(difflib.get_close_matches(k, CONSTRUCT_KEYS, n=1, cutoff=0.75) for k in others)


def _shift(e: Expr, by: int) -> Expr:
    """`e` with every position moved by `by` (an expression parsed from inside a longer text)."""
    import dataclasses

    changes: dict[str, Any] = {"pos": e.pos + by}
    for f in dataclasses.fields(e):
        value = getattr(e, f.name)
        if isinstance(value, Expr):
            changes[f.name] = _shift(value, by)
        elif isinstance(value, tuple) and value and all(isinstance(v, Expr) for v in value):
            changes[f.name] = tuple(_shift(v, by) for v in value)
    return dataclasses.replace(e, **changes)


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


def _import_hint(library: Path) -> str:
    """How a spec imports `library`: by its path relative to the spec (from the folder above: `families/x.yaml`)."""
    here = library.resolve()
    return (f"import it from a spec, by its path relative to that spec: from a spec in {here.parent.parent.name}/, "
            f"write `import: {here.parent.name}/{here.name}`; from one beside it, `import: {here.name}`")
