"""Standalone PyTorch source: typed graph -> a readable `.py` file that needs only `torch`.

Every block template of the spec becomes an `nn.Module` class (CamelCase of its
name) whose constructor takes the template's parameters, plus `in_ch` where the
input channel count varies between its uses; nested templates are nested
classes. Constructor arguments are the spec's expressions over those
parameters (`Cbr(c3r, c3, 3, p=1)`), and `forward` is written out from the
graph. The network itself is one more class, returning what `ArchModule`
returns in each mode, with the same `state_dict` keys.

A class is written from one use of its template and then checked against
every other use: same structure, and every argument and channel count it
computes equals what `infer` found there. A template that fails (uses of
different structure, such as different `repeat:` counts, or a use whose inner
nodes are read from outside) is written out inline at each use instead, with
a comment saying why. The emitted file is deterministic: same graph, same text.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..expr import Bin, Expr, ExprError, Fn, Lit, Name, Seq, Unary, Var, evaluate
from ..infer import TypedGraph
from ..ir import INPUT, Scope, join
from ..ops import REGISTRY
from ..spec import BlockDef, CallLayer, Construct, Layer, SeqLayer

MAX_LINE = 120

_FUNCTIONAL = {"relu": "F.relu", "relu6": "F.relu6", "gelu": "F.gelu", "silu": "F.silu",
               "sigmoid": "torch.sigmoid", "tanh": "torch.tanh", "hardswish": "F.hardswish"}
_ACT_MODULES = {"relu": "nn.ReLU", "relu6": "nn.ReLU6", "gelu": "nn.GELU", "silu": "nn.SiLU",
                "sigmoid": "nn.Sigmoid", "tanh": "nn.Tanh", "hardswish": "nn.Hardswish", "identity": "nn.Identity"}
_MODULE_OPS = {"conv", "bn", "maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool", "global_avgpool",
               "linear", "dropout", "lrn"}
_RESERVED = {"self", "x", "nn", "torch", "F", "math", "OrderedDict", "activation", "super", "range", "min", "max",
             "int", "round", "float", "bool", "str", "tuple", "l", "O", "I"}

_ACTIVATION_HELPER = '''def activation(kind: str) -> nn.Module:
    """The activation named `kind` (the spec's `act(kind)`)."""
    modules = {{
        {table},
    }}
    return modules[kind]()'''


def emit_python(typed: TypedGraph) -> str:
    """The network as standalone PyTorch source: one class per block template and one for the network."""
    return _Emitter(typed).run()


# -- expressions --------------------------------------------------------------

def _subst(e: Expr, env: dict[str, Expr]) -> Expr:
    if isinstance(e, Var):
        return env.get(e.name, e)
    if isinstance(e, Seq):
        return Seq(e.pos, tuple(_subst(i, env) for i in e.items))
    if isinstance(e, Unary):
        return Unary(e.pos, e.op, _subst(e.operand, env))
    if isinstance(e, Bin):
        return Bin(e.pos, e.op, _subst(e.left, env), _subst(e.right, env))
    if isinstance(e, Fn):
        return Fn(e.pos, e.name, tuple(_subst(a, env) for a in e.args))
    return e


def _free(e: Expr) -> bool:
    """Whether `e` reads a variable (a class parameter)."""
    if isinstance(e, Var):
        return True
    if isinstance(e, Seq):
        return any(_free(i) for i in e.items)
    if isinstance(e, Unary):
        return _free(e.operand)
    if isinstance(e, Bin):
        return _free(e.left) or _free(e.right)
    if isinstance(e, Fn):
        return any(_free(a) for a in e.args)
    return False


def _fold(e: Expr) -> Expr:
    """Evaluate every part of `e` that reads no parameter."""
    if not _free(e):
        try:
            return Lit(e.pos, evaluate(e, {}))
        except ExprError:
            return e
    if isinstance(e, Seq):
        return Seq(e.pos, tuple(_fold(i) for i in e.items))
    if isinstance(e, Unary):
        return Unary(e.pos, e.op, _fold(e.operand))
    if isinstance(e, Bin):
        return Bin(e.pos, e.op, _fold(e.left), _fold(e.right))
    if isinstance(e, Fn):
        return Fn(e.pos, e.name, tuple(_fold(a) for a in e.args))
    return e


def _add(a: Expr, b: Expr) -> Expr:
    return Bin(0, "+", a, b)


_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "%": 2, "**": 4}


def _lit(v: Any) -> str:
    if isinstance(v, str):
        return '"' + v + '"' if '"' not in v and "\\" not in v else repr(v)
    if isinstance(v, (list, tuple)):
        items = [_lit(i) for i in v]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    return repr(v)


class _Names:
    """How a variable of an expression is written: a constructor argument, or `self.name` in forward."""

    def __init__(self, table: Callable[[str], str]):
        self.table = table
        self.used: set[str] = set()
        self.math = False

    def render(self, e: Expr) -> str:
        return self._r(_fold(e), 0)

    def _r(self, e: Expr, prec: int) -> str:
        if isinstance(e, Lit):
            return _lit(e.value)
        if isinstance(e, Name):
            return _lit(e.id)
        if isinstance(e, Var):
            self.used.add(e.name)
            return self.table(e.name)
        if isinstance(e, Seq):
            return _lit(()) if not e.items else "(" + ", ".join(self._r(i, 0) for i in e.items) + \
                ("," if len(e.items) == 1 else "") + ")"
        if isinstance(e, Unary):
            text = e.op + self._r(e.operand, 3)
            return f"({text})" if prec > 3 else text
        if isinstance(e, Bin):
            p = _PREC[e.op]
            left, right = (p + 1, p) if e.op == "**" else (p, p + 1)
            text = f"{self._r(e.left, left)} {e.op} {self._r(e.right, right)}"
            return f"({text})" if p < prec else text
        if isinstance(e, Fn):
            args = ", ".join(self._r(a, 0) for a in e.args)
            if e.name in ("ceil", "floor"):
                self.math = True
                return f"math.{e.name}({args})"
            return f"{e.name}({args})"
        raise TypeError(f"cannot render {e!r}")  # pragma: no cover


def _pyname(name: str) -> str:
    """A Python identifier for a spec name (parameters, variables)."""
    if not name.isidentifier():
        name = "v" + "".join(ch if ch.isalnum() else "_" for ch in name)
    if keyword.iskeyword(name) or name in _RESERVED:
        name += "_"
    return name


def _is_attr(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def _camel(name: str) -> str:
    parts = [p for p in "".join(ch if ch.isalnum() else "_" for ch in name).split("_") if p]
    text = "".join(p[:1].upper() + p[1:] for p in parts) or "Block"
    return text if text[0].isalpha() else "B" + text


# -- the emitter --------------------------------------------------------------

@dataclass
class _Class:
    """A block template written as a class."""

    name: str
    block: BlockDef
    params: list[tuple[str, str]]
    """(spec name, Python name) of each parameter, in order."""
    in_ch: str | None
    """The constructor argument that takes the input channel count, if the class needs one."""
    in_var: str
    """The name of the input channel count in `out_ch`."""
    out_ch: Expr
    code: str = ""
    refs: set[str] = field(default_factory=set)


@dataclass
class _Unit:
    """A child of a class or of a namespace module: a leaf op, a class instance, a Sequential or a namespace."""

    kind: str  # "leaf" | "call" | "seq" | "space"
    path: str
    cls: _Class | None = None
    kids: list[_Unit] = field(default_factory=list)


class _Emitter:
    def __init__(self, typed: TypedGraph):
        self.typed = typed
        self.net = typed.net
        self.spec = typed.net.spec
        self.inputs = typed.graph.inputs
        self.index = {n: i for i, n in enumerate(typed.order)}
        self.var_env: dict[str, Expr] = {k: Lit(0, v) for k, v in self.spec.vars.items()}
        self.instances: dict[str, list[Scope]] = {}
        for scope in self.net.scopes.values():
            if scope.block is not None:
                self.instances.setdefault(scope.block, []).append(scope)
        self.subtree: dict[str, list[str]] = {}
        for name in typed.order:
            if name == INPUT:
                continue
            self.subtree.setdefault("", []).append(name)
            parts = name.split("/")
            for i in range(1, len(parts) + 1):
                self.subtree.setdefault("/".join(parts[:i]), []).append(name)
        self.scope_tree: dict[str, list[str]] = {}
        for path in self.net.scopes:
            parts = path.split("/") if path else []
            for i in range(len(parts)):
                self.scope_tree.setdefault("/".join(parts[:i]), []).append(path)
        self._opaque: dict[str, bool] = {}
        self.classes: dict[str, _Class | None] = {}
        self.class_order: list[str] = []
        self.why_inline: dict[str, str] = {}
        self.taken = {"Network"}
        self.need: set[str] = set()

    # -- facts about the graph ---------------------------------------------------
    def nodes_of(self, path: str) -> list[str]:
        return self.subtree.get(path, [])

    def external(self, nodes: list[str]) -> list[str]:
        inside = set(nodes)
        seen: list[str] = []
        for n in nodes:
            for s in self.inputs[n]:
                if s not in inside and s not in seen:
                    seen.append(s)
        return seen

    def opaque(self, scope: Scope) -> bool:
        """Whether a scope can be one module call: one input, and only its output read from outside."""
        if scope.path not in self._opaque:
            self._opaque[scope.path] = self._is_opaque(scope)
        return self._opaque[scope.path]

    def _is_opaque(self, scope: Scope) -> bool:
        nodes = self.nodes_of(scope.path)
        if not nodes or scope.output is None or len(self.external(nodes)) != 1 or isinstance(scope.input, list):
            return False
        inside = set(nodes)
        g = self.typed.graph.g
        return all(n == scope.output or all(s in inside for s in g.successors(n)) for n in nodes)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.typed.shape(name)

    # -- classes -----------------------------------------------------------------
    def class_for(self, block: str) -> _Class | None:
        if block in self.classes:
            return self.classes[block]
        self.classes[block] = None
        cls = self._build_class(block)
        self.classes[block] = cls
        if cls is not None:
            self.class_order.append(block)
        return cls

    def _build_class(self, block_name: str) -> _Class | None:
        block = self.spec.blocks[block_name]
        insts = self.instances[block_name]
        rep = insts[0]
        ins = [self.external(self.nodes_of(s.path)) for s in insts]
        if any(len(i) != 1 for i in ins):
            self.why_inline[block_name] = "a use reads several inputs"
            return None
        names = {p.name: _pyname(p.name) for p in block.params}
        in_name = next(n for n in ("in_ch", "in_channels", "in_ch_") if n not in names.values())
        chans = {self.shape(i[0])[0] if len(self.shape(i[0])) else None for i in ins}
        in_expr: Expr = Lit(0, chans.pop()) if len(chans) == 1 else Var(0, in_name)
        env = {**self.var_env, **{p: Var(0, py) for p, py in names.items()}}
        body = _Body(self, rep, env, in_expr)
        body.walk(block.layer, "", env)
        if not body.build():
            self.why_inline[block_name] = body.failure
            return None
        sig = self.signature(rep)
        for inst, src in zip(insts[1:], ins[1:], strict=True):
            values = {names[p]: v for p, v in (inst.args or {}).items()}
            values[in_name] = self.shape(src[0])[0] if self.shape(src[0]) else None
            if self.signature(inst) != sig or not body.holds(inst.path, values):
                self.why_inline[block_name] = (f"its uses differ in structure ('{rep.path}' and '{inst.path}') "
                                               "in a way its parameters cannot express")
                return None
        ctor = body.ctor()
        in_ch = in_name if in_name in body.ctor_names.used else None
        cls = _Class(self.class_name(block_name), block, [(p.name, names[p.name]) for p in block.params], in_ch,
                     in_name, body.ch[rep.output or ""])
        cls.code, cls.refs = body.class_code(cls, ctor, self.param_types(block, insts)), body.refs
        return cls

    def class_name(self, block_name: str) -> str:
        name = base = _camel(block_name)
        i = 2
        while name in self.taken or name in _RESERVED:
            name, i = f"{base}{i}", i + 1
        self.taken.add(name)
        return name

    def param_types(self, block: BlockDef, insts: list[Scope]) -> dict[str, str]:
        types: dict[str, str] = {}
        for p in block.params:
            seen = {_type_name(s.args.get(p.name)) for s in insts if s.args is not None}
            if "float" in seen:
                seen.discard("int")
            types[p.name] = " | ".join(sorted(seen))
        return types

    def signature(self, scope: Scope) -> tuple:
        """The structure of a scope's subtree, with names relative to it."""
        nodes = self.nodes_of(scope.path)
        prefix = scope.path + "/" if scope.path else ""
        inside = set(nodes)

        def rel(n: str) -> str:
            return "" if n == scope.path else n[len(prefix):] if n in inside else "<in>"

        sig: list[tuple] = []
        for n in nodes:
            node = self.net.nodes[n]
            sig.append((rel(n), node.op, tuple(rel(s) for s in self.inputs[n]),
                        tuple(len(self.shape(s)) for s in self.inputs[n])))
        for path in self.scope_tree.get(scope.path, []):
            s = self.net.scopes[path]
            if path != scope.path:
                sig.append((path[len(prefix):], s.kind, s.block, s.repeat,
                            self.opaque(s) if s.block is not None else None))
        return tuple(sig)

    # -- the file ----------------------------------------------------------------
    def run(self) -> str:
        root = _Body(self, self.net.scopes[""], dict(self.var_env), Lit(0, self.typed.input_shape[0]))
        root.walk(self.spec.body, "", self.var_env)
        for head in self.net.heads.values():
            root.walk(head.layer, head.name, self.var_env)
        if not root.build():
            raise RuntimeError(f"archspec cannot write this network as Python source: {root.failure}")
        if not root.holds("", {}):
            raise RuntimeError("archspec wrote a network whose sizes disagree with the spec (a bug)")
        name = self.class_name(self.net.name + "_net" if _camel(self.net.name) in self.taken else self.net.name)
        top = root.network_code(name)
        used = self.used_classes(root.refs)
        code = [self.classes[b].code for b in used] + [top]  # type: ignore[union-attr]
        text = "\n".join(code)
        parts = [self.header(name) + "\n\n" + _imports(text)]
        if re.search(r"\bactivation\(", text):
            table = ",\n        ".join(f'"{k}": {v}' for k, v in _ACT_MODULES.items())
            parts.append(_ACTIVATION_HELPER.format(table=table))
        return "\n\n\n".join(parts + code) + "\n"

    def used_classes(self, refs: set[str]) -> list[str]:
        by_name = {c.name: b for b, c in self.classes.items() if c is not None}
        todo, used = [by_name[r] for r in refs], set()
        while todo:
            b = todo.pop()
            if b not in used:
                used.add(b)
                todo += [by_name[r] for r in self.classes[b].refs]  # type: ignore[union-attr]
        return [b for b in self.class_order if b in used]

    def header(self, name: str) -> str:
        net, typed = self.net, self.typed
        shape = "×".join(str(d) for d in typed.input_shape)
        params, inference = typed.total("params"), typed.total("params", inference=True)
        count = f"{params:,}" + (f" ({inference:,} without the training-only heads)" if inference != params else "")
        lines = [f'"""{self.spec.doc or net.name}', "",
                 f"Generated by archspec from {Path(net.file).name} (network `{net.name}`), needs only torch.",
                 f"Input: N×{shape}. Parameters: {count}."]
        if self.spec.overrides:
            lines.append("Variables set: " + ", ".join(f"{k}={v!r}" for k, v in self.spec.overrides.items()) + ".")
        lines += [f"`{name}().state_dict()` has the keys of the archspec module, so weights load both ways "
                  "with strict=True.", '"""']
        return "\n".join(lines)


def _imports(code: str) -> str:
    """The imports the generated code uses, and no others."""
    lines = ["from __future__ import annotations", ""]
    if re.search(r"\bmath\.\w+\(", code):
        lines.append("import math")
    if re.search(r"\bOrderedDict\(", code):
        lines.append("from collections import OrderedDict")
    if lines[-1] != "":
        lines.append("")
    lines.append("import torch")
    if re.search(r"\bF\.\w+\(", code):
        lines.append("import torch.nn.functional as F")
    lines.append("from torch import nn")
    return "\n".join(lines)


def _type_name(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (list, tuple)):
        return "tuple[int, int]" if len(v) == 2 and all(isinstance(i, int) for i in v) else "tuple"
    if v is None:
        return "None"
    return type(v).__name__


class _Body:
    """The contents of one class (a template's, or the network's), written from one scope of the graph."""

    def __init__(self, em: _Emitter, scope: Scope, env: dict[str, Expr], in_expr: Expr):
        self.em, self.scope, self.net = em, scope, em.net
        self.prefix = scope.path + "/" if scope.path else ""
        self.prims: dict[str, tuple[CallLayer, dict[str, Expr]]] = {}
        self.blockcalls: dict[str, tuple[CallLayer, dict[str, Expr], dict[str, Expr]]] = {}
        self.repeats: dict[str, Expr] = {}
        self.in_expr = in_expr
        self.ch: dict[str, Expr] = {}
        self.sa: dict[str, dict[str, Expr]] = {}
        self.checks: list[tuple[str, str, Any]] = []
        self.failure = ""
        self.kids: list[_Unit] = []
        self.as_seq = False
        self.ctor_names = _Names(lambda n: n)
        self.fwd_attrs: dict[str, str] = {}
        self.fwd_names = _Names(self._fwd_attr)
        self.refs: set[str] = set()
        self.need_activation = False
        self.code_text = ""

    def _fwd_attr(self, name: str) -> str:
        """A class parameter read in forward is kept as an attribute (`self.scale`)."""
        kids = {k.path.rsplit("/", 1)[-1] for k in self.kids}
        return "self." + self.fwd_attrs.setdefault(name, "_" + name if name in kids else name)

    def rel(self, path: str) -> str:
        return "" if path == self.scope.path else path[len(self.prefix):]

    def abs(self, base: str, rel: str) -> str:
        return join(base, rel) if rel else base

    # -- the spec side: what each node was written as ----------------------------------
    def walk(self, layer: Layer, rel: str, env: dict[str, Expr]) -> None:
        if isinstance(layer, CallLayer):
            block = self.em.spec.blocks.get(layer.call.name)
            if block is None:
                self.prims[rel or (layer.call.name if not self.scope.path else "")] = (layer, env)
                return
            benv = self._bind(block, layer, env)
            self.blockcalls[rel] = (layer, env, benv)
            self.walk(block.layer, rel, benv)
        elif isinstance(layer, SeqLayer):
            for item in layer.items:
                self.walk(item.layer, join(rel, item.name), env)
        else:
            self._construct(layer, rel, env)

    def _construct(self, c: Construct, rel: str, env: dict[str, Expr]) -> None:
        if c.repeat is not None:
            assert c.body is not None
            self.repeats[rel] = _subst(c.repeat, env)
            scope = self.net.scopes.get(self.abs(self.scope.path, rel))
            for i in range((scope.repeat or 0) if scope else 0):
                self.walk(c.body, join(rel, str(i)), env)
        elif c.kind == "body":
            assert c.body is not None
            self.walk(c.body, rel, env)
        else:
            for b in c.branches:
                self.walk(b.layer, join(rel, b.name), env)

    def _bind(self, block: BlockDef, layer: CallLayer, env: dict[str, Expr]) -> dict[str, Expr]:
        given = {p.name: a for p, a in zip(block.params, layer.call.args, strict=False)}
        given.update({kw.key: kw.value for kw in layer.call.kwargs})
        bound: dict[str, Expr] = dict(self.em.var_env)
        for p in block.params:
            raw = given.get(p.name, p.default)
            assert raw is not None
            bound[p.name] = _subst(raw, env if p.name in given else dict(bound))
        return bound

    def attrs(self, node_name: str) -> dict[str, Expr]:
        """A node's attributes as expressions over the class parameters."""
        rel = self.rel(node_name)
        if rel in self.sa:
            return self.sa[rel]
        op = REGISTRY[self.net.nodes[node_name].op]
        out: dict[str, Expr] = {}
        if rel in self.prims and op.arity is not None:
            layer, env = self.prims[rel]
            aliases = _aliases(op.attrs)
            for field_name, arg in zip(op.positional, layer.call.args, strict=False):
                out[field_name] = _subst(arg, env)
            for kw in layer.call.kwargs:
                out[aliases.get(kw.key, kw.key)] = _subst(kw.value, env)
        self.sa[rel] = out
        return out

    # -- the module tree --------------------------------------------------------------
    def build(self) -> bool:
        self.kids = self.children(self.scope.path)
        for kid in self._flat(self.kids):
            if kid.kind == "leaf" and kid.path == self.scope.path and self.net.nodes[kid.path].op in _MODULE_OPS:
                self.failure = "the block is a single op"
                return False
        self._channels()
        names = [k.path.rsplit("/", 1)[-1] for k in self.kids]
        self.as_seq = bool(self.scope.path) and names == [str(i) for i in range(len(names))] and \
            self._chain(self.scope, self.kids)
        return not self.failure

    def ctor(self) -> list[str]:
        """The constructor's lines; a class that is a chain of numbered items is an `nn.Sequential`."""
        if self.as_seq:
            text = self.module_expr(_Unit("seq", self.scope.path, kids=self.kids))
            return ["super().__init__(" + text[len("nn.Sequential("):]]
        return self.ctor_lines(self.kids, "self")

    def children(self, path: str) -> list[_Unit]:
        scope = self.net.scopes[path]
        out = []
        for c in scope.children:
            if c == path or c not in self.net.scopes:
                out.append(_Unit("leaf", c))
            else:
                out.append(self.unit(self.net.scopes[c]))
        return out

    def unit(self, scope: Scope) -> _Unit:
        if scope.children == [scope.path] and scope.path in self.net.nodes:
            return _Unit("leaf", scope.path)
        if scope.block is not None and self.em.opaque(scope):
            cls = self.em.class_for(scope.block)
            if cls is not None:
                return _Unit("call", scope.path, cls)
        kids = self.children(scope.path)
        kind = "seq" if self._chain(scope, kids) else "space"
        return _Unit(kind, scope.path, kids=kids)

    def _chain(self, scope: Scope, kids: list[_Unit]) -> bool:
        if not kids or not self.em.opaque(scope) or scope.path in self.net.nodes:
            return False
        if any(k.kind == "space" or (k.kind == "leaf" and not self._module_form(k.path)) for k in kids):
            return False
        names = [k.path.rsplit("/", 1)[-1] for k in kids]
        if names != [str(i) for i in range(len(kids))] and not all(_is_attr(n) for n in names):
            return False
        prev = self.em.external(self.em.nodes_of(scope.path))[0]
        for k in kids:
            nodes = self._nodes(k)
            if self.em.external(nodes) != [prev] or (k.kind == "leaf" and len(self.em.inputs[k.path]) != 1):
                return False
            out = self._output(k)
            if k is not kids[-1] and out is not None:
                succ = list(self.em.typed.graph.g.successors(out))
                nxt = set(self._nodes(kids[kids.index(k) + 1]))
                if any(s not in nxt for s in succ):
                    return False
            inner = set(nodes) - {out}
            if any(s not in set(nodes) for n in inner for s in self.em.typed.graph.g.successors(n)):
                return False
            prev = out
        return prev == scope.output

    def _nodes(self, unit: _Unit) -> list[str]:
        return [unit.path] if unit.kind == "leaf" else self.em.nodes_of(unit.path)

    def _output(self, unit: _Unit) -> str:
        if unit.kind == "leaf":
            return unit.path
        out = self.net.scopes[unit.path].output
        assert out is not None
        return out

    def _flat(self, kids: list[_Unit]) -> list[_Unit]:
        out: list[_Unit] = []
        for k in kids:
            out.append(k)
            if k.kind == "space":
                out += self._flat(k.kids)
        return out

    def _all(self, kids: list[_Unit]) -> list[_Unit]:
        out: list[_Unit] = []
        for k in kids:
            out += [k] + self._all(k.kids)
        return out

    def _module_form(self, name: str) -> bool:
        node = self.net.nodes[name]
        if node.op in _MODULE_OPS or node.op in _ACT_MODULES or node.op in ("act", "leaky_relu"):
            return True
        return node.op == "flatten"

    # -- channel counts -----------------------------------------------------------------
    def _channels(self) -> None:
        nodes = self.em.nodes_of(self.scope.path)
        ext = self.em.external(nodes)
        for e in ext:
            self.ch[e] = self.in_expr
        calls = {n: u for u in self._all(self.kids) if u.kind == "call" for n in self.em.nodes_of(u.path)}
        done: set[str] = set()
        for n in nodes:
            unit = calls.get(n)
            if unit is not None:
                if unit.path not in done:
                    done.add(unit.path)
                    self._call_channels(unit)
                continue
            self._node_channels(n)

    def _call_channels(self, unit: _Unit) -> None:
        cls = unit.cls
        assert cls is not None
        _, _, benv = self.blockcalls[self.rel(unit.path)]
        src = self.em.external(self.em.nodes_of(unit.path))[0]
        env = {py: benv[p] for p, py in cls.params}
        env[cls.in_var] = self.ch[src]
        out = self._output(unit)
        self.ch[out] = _subst(cls.out_ch, env)
        self.checks.append(("ch", self.rel(out), self.ch[out]))
        for p, _ in cls.params:
            self.checks.append(("arg", self.rel(unit.path), (p, benv[p])))

    def _node_channels(self, n: str) -> None:
        node = self.net.nodes[n]
        ins = [self.ch[s] for s in self.em.inputs[n]]
        sa = self.attrs(n)
        if node.op in ("conv", "linear"):
            out = sa["out"]
        elif node.op == "flatten" and len(self.em.shape(self.em.inputs[n][0])) > 1:
            h, w = self.em.shape(self.em.inputs[n][0])[1:]
            out = Bin(0, "*", ins[0], Lit(0, h * w))
        elif node.op == "concat":
            out = ins[0]
            for e in ins[1:]:
                out = _add(out, e)
        else:
            out = ins[0]
        self.ch[n] = out
        self.checks.append(("ch", self.rel(n), out))
        if node.op not in ("concat", "add"):
            self.checks.append(("attrs", self.rel(n), sa))

    def holds(self, base: str, values: dict[str, Any]) -> bool:
        """Whether every size and argument this class computes equals the graph's at the scope `base`."""
        try:
            for kind, rel, what in self.checks:
                name = self.abs(base, rel) if rel else (base or rel)
                if kind == "ch":
                    if evaluate(_fold(what), values) != self.em.shape(name)[0]:
                        return False
                elif kind == "arg":
                    p, e = what
                    scope = self.net.scopes[self.abs(base, rel)]
                    if scope.args is None or evaluate(_fold(e), values) != scope.args.get(p):
                        return False
                else:
                    node = self.net.nodes[name]
                    got = {k: evaluate(_fold(e), values) for k, e in what.items()}
                    if REGISTRY[node.op].attrs.model_validate(got) != node.attrs:
                        return False
            for rel, e in self.repeats.items():
                if evaluate(_fold(e), values) != self.net.scopes[self.abs(base, rel)].repeat:
                    return False
        except (ExprError, ValueError, KeyError, TypeError):
            return False
        return True

    # -- constructor ---------------------------------------------------------------------
    def module_expr(self, unit: _Unit) -> str:
        """The expression that constructs a unit that is one module."""
        if unit.kind == "call":
            return self._call_expr(unit)
        if unit.kind == "seq":
            items = [self.module_expr(k) for k in unit.kids]
            names = [k.path.rsplit("/", 1)[-1] for k in unit.kids]
            scope = self.net.scopes[unit.path]
            if names == [str(i) for i in range(len(names))]:
                if len(set(items)) == 1 and len(items) > 1:
                    count = self.repeats.get(self.rel(unit.path))
                    n = self.ctor_names.render(count) if count is not None and scope.repeat is not None \
                        else str(len(items))
                    return f"nn.Sequential(*[{items[0]} for _ in range({n})])"
                return _call("nn.Sequential", items)
            return _call("nn.Sequential", [_call("OrderedDict", [
                "[" + ", ".join(f'("{n}", {i})' for n, i in zip(names, items, strict=True)) + "]"])])
        return self._leaf_module(unit.path, in_seq=True) or "nn.Identity()"

    def _call_expr(self, unit: _Unit) -> str:
        cls = unit.cls
        assert cls is not None
        self.refs.add(cls.name)
        layer, env, _ = self.blockcalls[self.rel(unit.path)]
        args = [self.ctor_names.render(self.ch[self.em.external(self.em.nodes_of(unit.path))[0]])] if cls.in_ch else []
        py = dict(cls.params)
        args += [self.ctor_names.render(_subst(a, env)) for a in layer.call.args]
        args += [f"{py[kw.key]}={self.ctor_names.render(_subst(kw.value, env))}" for kw in layer.call.kwargs]
        return _call(cls.name, args)

    def _leaf_module(self, name: str, in_seq: bool = False) -> str | None:
        node = self.net.nodes[name]
        sa = self.attrs(name)
        r = self.ctor_names.render
        src = self.em.inputs[name][0] if self.em.inputs[name] else None
        rank = len(self.em.shape(src)) if src is not None else 0
        inch = r(self.ch[src]) if src is not None else "0"

        def kw(key: str, arg: str) -> list[str]:
            return [f"{arg}={r(sa[key])}"] if key in sa else []

        op = node.op
        if op == "conv":
            return _call("nn.Conv2d", [inch, r(sa["out"]), r(sa["k"])] + kw("s", "stride") + kw("p", "padding")
                         + kw("d", "dilation") + kw("groups", "groups") + kw("bias", "bias"))
        if op == "bn":
            cls = "nn.BatchNorm2d" if rank == 3 else "nn.BatchNorm1d"
            return _call(cls, [inch] + kw("eps", "eps") + kw("momentum", "momentum") + kw("affine", "affine"))
        if op == "maxpool":
            return _call("nn.MaxPool2d", [r(sa["k"])] + kw("s", "stride") + kw("p", "padding") + kw("d", "dilation")
                         + kw("ceil", "ceil_mode"))
        if op == "avgpool":
            return _call("nn.AvgPool2d", [r(sa["k"])] + kw("s", "stride") + kw("p", "padding")
                         + kw("ceil", "ceil_mode") + kw("count_include_pad", "count_include_pad"))
        if op in ("adaptive_avgpool", "adaptive_maxpool"):
            cls = "nn.AdaptiveAvgPool2d" if op == "adaptive_avgpool" else "nn.AdaptiveMaxPool2d"
            return _call(cls, [r(sa["out"])])
        if op == "global_avgpool":
            return "nn.AdaptiveAvgPool2d(1)"
        if op == "linear":
            return _call("nn.Linear", [inch, r(sa["out"])] + kw("bias", "bias"))
        if op == "dropout":
            return _call("nn.Dropout", [r(sa["p"])] if "p" in sa else [])
        if op == "lrn":
            return _call("nn.LocalResponseNorm", [r(sa["size"])] + kw("alpha", "alpha") + kw("beta", "beta")
                         + kw("k", "k"))
        if op == "act" and _free(sa["kind"]):
            self.need_activation = True
            return f"activation({r(sa['kind'])})"
        if not in_seq:
            return None
        if op == "act":
            return _ACT_MODULES[str(_fold(sa["kind"]).value)] + "()"  # type: ignore[attr-defined]
        if op in _ACT_MODULES:
            return _ACT_MODULES[op] + "()"
        if op == "leaky_relu":
            return _call("nn.LeakyReLU", [r(sa["slope"])] if "slope" in sa else [])
        if op == "flatten":
            return "nn.Flatten()" if rank > 1 else "nn.Identity()"
        return None

    def ctor_lines(self, kids: list[_Unit], base: str) -> list[str]:
        lines: list[str] = []
        for k in kids:
            name = k.path.rsplit("/", 1)[-1]
            lines += self._inline_note(k)
            if k.kind == "space":
                lines.append(_assign(base, name, "nn.Module()"))
                lines += self.ctor_lines(k.kids, _attr(base, name))
                continue
            if k.kind == "leaf":
                expr = self._leaf_module(k.path)
                if expr is None:
                    continue
            else:
                expr = self.module_expr(k)
            lines.append(_assign(base, name, expr))
        return lines

    def _inline_note(self, unit: _Unit) -> list[str]:
        """Why a use of a block template is written out here instead of being an instance of its class."""
        scope = self.net.scopes.get(unit.path)
        if unit.kind in ("call", "leaf") or scope is None or scope.block is None:
            return []
        why = self.em.why_inline.get(scope.block)
        if why is None:
            several = len(self.em.external(self.em.nodes_of(scope.path))) > 1 or isinstance(scope.input, list)
            why = "it reads several inputs" if several else "nodes inside it are read from outside it"
        return [f"# `{scope.label()}` written out inline: {why}"]

    # -- forward -------------------------------------------------------------------------
    def statements(self) -> list[_Unit]:
        stmts: list[_Unit] = []
        for k in self._flat(self.kids):
            if k.kind == "space":
                continue
            stmts.append(k)
        stmts.sort(key=lambda u: min(self.em.index[n] for n in self._nodes(u)))
        return stmts

    def attr_path(self, path: str) -> str:
        rel = self.rel(path)
        out = "self"
        for part in rel.split("/"):
            out = _attr(out, part)
        return out

    def stmt_expr(self, unit: _Unit, args: list[str]) -> str | None:
        """The right-hand side computing a unit from its inputs' variables; None passes the input through."""
        if unit.kind != "leaf":
            return f"{self.attr_path(unit.path)}({args[0]})"
        node = self.net.nodes[unit.path]
        op, sa = node.op, self.attrs(unit.path)
        fwd = self.fwd_names.render
        if op in _MODULE_OPS or (op == "act" and _free(sa["kind"])):
            return f"{self.attr_path(unit.path)}({args[0]})"
        kind = op if op != "act" else str(_fold(sa["kind"]).value)  # type: ignore[attr-defined]
        if kind == "identity" or (op == "flatten" and len(self.em.shape(self.em.inputs[unit.path][0])) == 1):
            return None
        if kind in _FUNCTIONAL:
            return f"{_FUNCTIONAL[kind]}({args[0]})"
        if op == "leaky_relu":
            return f"F.leaky_relu({args[0]}, {fwd(sa['slope'])})" if "slope" in sa else f"F.leaky_relu({args[0]})"
        if op == "flatten":
            return f"torch.flatten({args[0]}, 1)"
        if op == "concat":
            return f"torch.cat([{', '.join(args)}], 1)"
        if op == "add":
            return " + ".join(args)
        if op == "scale":
            return f"{args[0]} * {fwd(sa['factor'])}"
        raise ValueError(f"no Python for op '{op}'")  # pragma: no cover

    def forward_lines(self, outputs: list[str], train_only: set[int]) -> tuple[list[str | None], dict[str, str]]:
        """One line per statement, in graph order (None where a value passes through); a value read only by
        the next statement, or only returned, reuses `x` when `x` is no longer needed."""
        stmts = self.statements()
        ext = self.em.external(self.em.nodes_of(self.scope.path)) if self.scope.path else [INPUT]
        forced: set[str] = set()
        while True:
            lines, var, conflict = self._assign_vars(stmts, ext, outputs, train_only, forced)
            if conflict is None:
                return lines, var
            forced.add(conflict)

    def _value_name(self, out: str, path: str) -> str:
        """A value is named after the outermost scope inside this class that it is the output of."""
        name = path.rsplit("/", 1)[-1]
        while "/" in path and path.rsplit("/", 1)[0] != self.scope.path:
            path = path.rsplit("/", 1)[0]
            scope = self.net.scopes.get(path)
            if scope is None or scope.output != out:
                break
            name = path.rsplit("/", 1)[-1]
        return name

    def _assign_vars(self, stmts: list[_Unit], ext: list[str], outputs: list[str], train_only: set[int],
                     forced: set[str]) -> tuple[list[str | None], dict[str, str], str | None]:
        ins = [[self.em.external(self._nodes(u))[0]] if u.kind != "leaf" else list(self.em.inputs[u.path])
               for u in stmts]
        remaining: dict[str, int] = {o: outputs.count(o) for o in outputs}
        for srcs in ins:
            for s in srcs:
                remaining[s] = remaining.get(s, 0) + 1
        var = {e: "x" for e in ext}
        held = set(ext[:1])  # the values `x` holds now
        taken = {"x", "self"}
        lines: list[str | None] = []
        for i, (u, srcs) in enumerate(zip(stmts, ins, strict=True)):
            out = self._output(u)
            for s in srcs:
                if var[s] == "x" and s not in held:
                    return [], {}, s
                remaining[s] -= 1
            expr = self.stmt_expr(u, [var[s] for s in srcs])
            if expr is None:
                var[out] = var[srcs[0]]
                if var[out] == "x":
                    held.add(out)
                lines.append(None)
                continue
            x_free = all(remaining.get(h, 0) == 0 for h in held)
            nxt = ins[i + 1] if i + 1 < len(stmts) else []
            single = remaining.get(out, 0) == outputs.count(out) + nxt.count(out) > 0 and len(nxt) <= 1
            if x_free and single and out not in forced and i not in train_only:
                var[out], held = "x", {out}
            else:
                var[out] = _unique(_pyname(self._value_name(out, u.path)), taken)
            lines.append(f"{var[out]} = {expr}")
        for o in outputs:
            if var.get(o) == "x" and o not in held:
                return [], {}, o
        return lines, var, None

    def class_code(self, cls: _Class, ctor: list[str], types: dict[str, str]) -> str:
        fwd: list[str] = []
        if not self.as_seq:
            outputs = [self.scope.output or ""]
            lines, var = self.forward_lines(outputs, set())
            fwd = _return_last([line for line in lines if line is not None], var[outputs[0]])
        ctor = ctor + [f"self.{self.fwd_attrs[py]} = {py}" for _, py in cls.params if py in self.fwd_names.used]
        params, defaults = self._signature(cls, types)
        doc = cls.block.doc or f"The `{cls.block.name}` block."
        loc = cls.block.loc
        shown = _Names(lambda n: "$" + n)
        written = [p.name + (f"={shown.render(p.default)}" if p.default else "") for p in cls.block.params]
        sig = f"{cls.block.name}({', '.join(written)})"
        body = [f"class {cls.name}(nn.{'Sequential' if self.as_seq else 'Module'}):",
                f'    """{doc}',
                "",
                f"    Spec: `{sig}`, {Path(loc.file).name}:{loc.line}.",
                '    """',
                "",
                _def("    def __init__", ["self"] + params, "None")]
        body += [] if self.as_seq else ["        super().__init__()"]
        body += ["        " + d.replace("\n", "\n        ") for d in defaults]
        body += ["        " + line.replace("\n", "\n        ") for line in ctor]
        if fwd:
            body += ["", "    def forward(self, x: torch.Tensor) -> torch.Tensor:"]
            body += ["        " + line for line in fwd]
        self.code_text = "\n".join(body)
        return self.code_text

    def _signature(self, cls: _Class, types: dict[str, str]) -> tuple[list[str], list[str]]:
        """The constructor's parameters, and the lines that compute defaults that depend on other parameters."""
        py = dict(cls.params)
        env = {**self.em.var_env, **{q: Var(0, name) for q, name in cls.params}}
        params = [f"{cls.in_ch}: int"] if cls.in_ch else []
        defaults: list[str] = []
        for p in cls.block.params:
            hint = f": {types[p.name]}" if types[p.name] else ""
            if p.default is None:
                params.append(f"{py[p.name]}{hint}")
                continue
            default = _fold(_subst(p.default, env))
            if isinstance(default, Lit):
                params.append(f"{py[p.name]}{hint} = {_lit(default.value)}" if hint
                              else f"{py[p.name]}={_lit(default.value)}")
            else:
                params.append(f"{py[p.name]}{hint} | None = None" if hint else f"{py[p.name]}=None")
                defaults.append(f"if {py[p.name]} is None:\n    {py[p.name]} = {_Names(lambda n: n).render(default)}")
        return params, defaults

    def network_code(self, name: str) -> str:
        net = self.net
        ctor = self.ctor_lines(self.kids, "self")
        ctor.append("self.loss_weights = {" + ", ".join(f'"{k}": {v!r}' for k, v in net.loss_weights().items()) + "}")
        outputs = [net.outputs[k] for k in net.output_names(True)]
        stmts = self.statements()
        train = {i for i, u in enumerate(stmts) if all(net.nodes[n].train_only for n in self._nodes(u))}
        lines, var = self.forward_lines(outputs, train)
        eval_keys, train_keys = net.output_names(False), net.output_names(True)

        def result(keys: list[str]) -> str:
            if keys == ["main"]:
                return var[net.outputs["main"]]
            return "{" + ", ".join(f'"{k}": {var[net.outputs[k]]}' for k in keys) + "}"

        fwd: list[str] = []
        first = len(stmts) - len(train)
        if train and min(train) == first:
            fwd = [line for line in lines[:first] if line is not None]
            fwd += ["if not self.training:", f"    return {result(eval_keys)}"]
            fwd += [line for line in lines[first:] if line is not None] + [f"return {result(train_keys)}"]
        elif train:
            for i, line in enumerate(lines):
                if line is not None:
                    fwd.append(("if self.training:\n    " if i in train else "") + line)
            fwd += ["if self.training:", f"    return {result(train_keys)}", f"return {result(eval_keys)}"]
        else:
            kept = [line for line in lines if line is not None]
            fwd = _return_last(kept, var[net.outputs["main"]]) if eval_keys == ["main"] else \
                kept + [f"return {result(eval_keys)}"]
        ret = "torch.Tensor" if eval_keys == train_keys == ["main"] else \
            "dict[str, torch.Tensor]" if eval_keys != ["main"] else "torch.Tensor | dict[str, torch.Tensor]"
        doc = [f'    """The network `{net.name}`: `forward` takes N×{"×".join(map(str, self.em.typed.input_shape))}.']
        if train_keys != eval_keys:
            doc.append("")
            doc.append(f"    In eval mode it returns {_describe(eval_keys)}; in training mode the dict")
            doc.append(f"    {{{', '.join(repr(k) for k in train_keys)}}}, weighted in the loss by `loss_weights`.")
        elif eval_keys != ["main"]:
            doc.append(f"    It returns the dict {{{', '.join(repr(k) for k in eval_keys)}}}.")
        if len(doc) == 1:
            doc[0] += '"""'
        else:
            doc.append('    """')
        body = [f"class {name}(nn.Module):"] + doc + ["", "    def __init__(self) -> None:",
                                                      "        super().__init__()"]
        body += ["        " + line.replace("\n", "\n        ") for line in ctor]
        body += ["", f"    def forward(self, x: torch.Tensor) -> {ret}:"]
        body += ["        " + line.replace("\n", "\n        ") for line in fwd]
        self.code_text = "\n".join(body)
        return self.code_text


def _describe(keys: list[str]) -> str:
    return "the main output tensor" if keys == ["main"] else "the dict {" + ", ".join(repr(k) for k in keys) + "}"


def _return_last(lines: list[str], out_var: str) -> list[str]:
    if lines and lines[-1].startswith(f"{out_var} = "):
        return lines[:-1] + ["return " + lines[-1][len(out_var) + 3:]]
    return lines + [f"return {out_var}"]


def _unique(name: str, taken: set[str]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name}_{i}", i + 1
    taken.add(out)
    return out


def _aliases(model: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        for choice in getattr(alias, "choices", []):
            if isinstance(choice, str):
                out[choice] = name
    return out


def _attr(base: str, name: str) -> str:
    if _is_attr(name):
        return f"{base}.{name}"
    return f'{base}.get_submodule("{name}")'


def _assign(base: str, name: str, expr: str) -> str:
    if _is_attr(name):
        return f"{base}.{name} = {expr}"
    return f'{base}.add_module("{name}", {expr})'


def _call(fn: str, args: list[str]) -> str:
    """`fn(a, b)` on one line, or one argument a line when that line would be long or nests calls."""
    one = f"{fn}({', '.join(args)})"
    if len(one) <= 90 or len(args) < 2:
        return one
    inner = ",\n".join("    " + a.replace("\n", "\n    ") for a in args)
    return f"{fn}(\n{inner},\n)"


def _def(head: str, params: list[str], ret: str) -> str:
    one = f"{head}({', '.join(params)}) -> {ret}:"
    if len(one) <= MAX_LINE:
        return one
    inner = ",\n".join("        " + p for p in params)
    return f"{head}(\n{inner},\n    ) -> {ret}:"


__all__ = ["emit_python"]
