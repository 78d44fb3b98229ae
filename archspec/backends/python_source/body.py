"""One class: its module tree, constructor and `forward`, written from one scope of the graph."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ...expr import Bin, CallText, Expr, ExprError, Fn, Lit, Name, Seq, Unary, Var, children, evaluate
from ...ir import INPUT, Scope, join
from ...ops import REGISTRY, Shape, SourceForm
from ...ops.registry import channel_count
from ...spec import BlockDef, CallLayer, Construct, Layer, SeqLayer
from ...validate import RESERVED_NAMES
from .exprs import Names, fold, free, is_attr, lit, pyname, subst
from .text import aliases, assign, attr, call, def_, describe, return_last, unique

if TYPE_CHECKING:
    from .emitter import Emitter


_MARK = "\x00"


class NodeArgs:
    """A node's `SourceArgs`: its arguments as the spec wrote them, rendered by `render`.

    With `render=None` each argument is a placeholder, resolved by `resolve` once the text is known:
    only the arguments a forward expression really reads become attributes (`self.slope`).
    """

    def __init__(self, body: Body, name: str, render: Callable[[Expr], str] | None):
        self.body, self.render = body, render
        self.node = body.net.nodes[name]
        self.sa = body.attrs(name)
        self.srcs = body.em.inputs[name]
        self.ins: list[Shape] = [body.em.shape(s) for s in self.srcs]

    def expr(self, name: str) -> Expr:
        return self.sa[name] if name in self.sa else Lit(0, getattr(self.node.attrs, name))

    def arg(self, name: str) -> str | None:
        if name not in self.sa:
            return None
        return self.render(self.sa[name]) if self.render else f"{_MARK}{name}{_MARK}"

    def value(self, name: str) -> Any:
        return getattr(self.node.attrs, name)

    def fixed(self, name: str) -> bool:
        return name not in self.sa or not free(self.sa[name])

    def channels(self, i: int = 0) -> Expr:
        return self.body.ch.get(self.srcs[i], Var(0, "?"))  # unknown while the module tree is being laid out

    def in_ch(self, i: int = 0) -> str:
        return self.render(self.channels(i)) if self.render else f"{_MARK}#{i}{_MARK}"

    def resolve(self, text: str, render: Callable[[Expr], str]) -> str:
        """Replace the placeholders in `text` by the arguments rendered with `render`."""
        parts = text.split(_MARK)
        for i in range(1, len(parts), 2):
            key = parts[i]
            parts[i] = render(self.channels(int(key[1:]))) if key.startswith("#") else render(self.sa[key])
        return "".join(parts)


def channels(shape: Shape) -> int | None:
    return channel_count(shape)


@dataclass
class ClassInfo:
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
class Unit:
    """A child of a class or of a namespace module: a leaf op, a class instance, a Sequential or a namespace."""

    kind: str  # "leaf" | "call" | "seq" | "space"
    path: str
    cls: ClassInfo | None = None
    kids: list[Unit] = field(default_factory=list)


_OLD_FUNCS = {"min", "max", "int", "round", "ceil", "floor"}


def _plain_expr(e: Expr) -> bool:
    """An expression this backend can write over class parameters: arithmetic on numbers, no `$in` or `$i`."""
    if isinstance(e, Var):
        return e.name not in ("in", "i")
    if isinstance(e, Fn):
        return e.name in _OLD_FUNCS and not e.kwargs and all(_plain_expr(a) for a in e.args)
    if not isinstance(e, (Lit, Name, Seq, Unary, Bin)) or (isinstance(e, Unary) and e.op == "not"):
        return False
    return all(_plain_expr(c) for c in children(e))


def _plain(layer: Layer) -> bool:
    """Whether the walk can follow `layer` as written (the language's newer forms are taken from the graph)."""
    if isinstance(layer, CallLayer):
        call = layer.call
        return call.callee_var is None and all(_plain_expr(e) for e in (*call.args, *(k.value for k in call.kwargs)))
    if isinstance(layer, SeqLayer):
        return all(not isinstance(i.layer, Construct) or (i.layer.kind != "splice" and i.layer.name is None)
                   for i in layer.items)
    return (layer.kind != "splice" and layer.when is None and layer.names is None and layer.start is None
            and layer.name is None and (layer.repeat is None or _plain_expr(layer.repeat))
            and all(not isinstance(b.layer, Construct) or b.layer.name is None for b in layer.branches))


class Body:
    """The contents of one class (a template's, or the network's), written from one scope of the graph."""

    def __init__(self, em: Emitter, scope: Scope, env: dict[str, Expr], in_expr: Expr):
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
        self.kids: list[Unit] = []
        self.as_seq = False
        self.ctor_names = Names(lambda n: n)
        self.fwd_attrs: dict[str, str] = {}
        self.fwd_names = Names(self._fwd_attr)
        self.refs: set[str] = set()
        self.code_text = ""

    def _fwd_attr(self, name: str) -> str:
        """A class parameter read in forward is kept as an attribute (`self.scale`)."""
        taken = {k.path.rsplit("/", 1)[-1] for k in self.kids} | RESERVED_NAMES  # nn.Module's own attributes
        return "self." + self.fwd_attrs.setdefault(name, "_" + name if name in taken else name)

    def rel(self, path: str) -> str:
        return "" if path == self.scope.path else path[len(self.prefix):]

    def abs(self, base: str, rel: str) -> str:
        return join(base, rel) if rel else base

    # -- the spec side: what each node was written as ----------------------------------
    def walk(self, layer: Layer, rel: str, env: dict[str, Expr]) -> None:
        if not _plain(layer):
            self._literal(rel)
            return
        if isinstance(layer, CallLayer):
            block = self.em.spec.blocks.get(layer.call.name)
            if block is None:
                self.prims[rel or (layer.call.name if not self.scope.path else "")] = (layer, env)
                return
            if not all(_plain_expr(p.default) for p in block.params if p.default is not None):
                self._literal(rel)
                return
            benv = self._bind(block, layer, env)
            self.blockcalls[rel] = (layer, env, benv)
            self.walk(block.layer, rel, benv)
        elif isinstance(layer, SeqLayer):
            for item in layer.items:
                self.walk(item.layer, join(rel, item.name), env)
        else:
            self._construct(layer, rel, env)

    def _literal(self, rel: str) -> None:
        """A part written with what this backend does not express as parameters (`when:`, `splice:`, `$in`,
        a callee variable, ...): its ops take the values the graph has, and its block instances the arguments
        they were given (a class is still written where every use of a template agrees)."""
        base = self.abs(self.scope.path, rel)
        for path, scope in self.net.scopes.items():
            inside = path == base or path.startswith(base + "/") if base else True
            if not inside or scope.block is None or scope.args is None or path == self.scope.path:
                continue
            args = scope.args
            call = CallText(scope.block, 0, tuple(Lit(0, v) for v in args.values()))
            layer = CallLayer(call, scope.loc) if scope.loc is not None else None
            if layer is not None:
                self.blockcalls[self.rel(path)] = (layer, {}, {**self.em.var_env,
                                                               **{k: Lit(0, v) for k, v in args.items()}})

    def _construct(self, c: Construct, rel: str, env: dict[str, Expr]) -> None:
        if c.repeat is not None:
            assert c.body is not None
            self.repeats[rel] = subst(c.repeat, env)
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
            bound[p.name] = subst(raw, env if p.name in given else dict(bound))
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
            names = aliases(op.attrs)
            for field_name, arg in zip(op.positional, layer.call.args, strict=False):
                out[field_name] = subst(arg, env)
            for kw in layer.call.kwargs:
                out[names.get(kw.key, kw.key)] = subst(kw.value, env)
        elif op.arity is not None:  # written in a part the walk does not follow: the graph's values
            attrs = self.net.nodes[node_name].attrs
            out = {k: Lit(0, getattr(attrs, k)) for k in attrs.model_fields_set}
        self.sa[rel] = out
        return out

    # -- the module tree --------------------------------------------------------------
    def build(self) -> bool:
        self.kids = self.children(self.scope.path)
        for kid in self._flat(self.kids):
            if kid.kind == "leaf" and kid.path == self.scope.path and self.form(kid.path).call is None:
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
            text = self.module_expr(Unit("seq", self.scope.path, kids=self.kids))
            return ["super().__init__(" + text[len("nn.Sequential("):]]
        return self.ctor_lines(self.kids, "self")

    def children(self, path: str) -> list[Unit]:
        scope = self.net.scopes[path]
        out = []
        for c in scope.children:
            if c == path or c not in self.net.scopes:
                out.append(Unit("leaf", c))
            else:
                out.append(self.unit(self.net.scopes[c]))
        return out

    def unit(self, scope: Scope) -> Unit:
        if scope.children == [scope.path] and scope.path in self.net.nodes:
            return Unit("leaf", scope.path)
        if scope.block is not None and self.em.opaque(scope):
            cls = self.em.class_for(scope.block)
            if cls is not None:
                return Unit("call", scope.path, cls)
        kids = self.children(scope.path)
        kind = "seq" if self._chain(scope, kids) else "space"
        return Unit(kind, scope.path, kids=kids)

    def _chain(self, scope: Scope, kids: list[Unit]) -> bool:
        if not kids or not self.em.opaque(scope) or scope.path in self.net.nodes:
            return False
        if any(k.kind == "space" or (k.kind == "leaf" and not self._module_form(k.path)) for k in kids):
            return False
        names = [k.path.rsplit("/", 1)[-1] for k in kids]
        if names != [str(i) for i in range(len(kids))] and not all(is_attr(n) for n in names):
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

    def _nodes(self, unit: Unit) -> list[str]:
        return [unit.path] if unit.kind == "leaf" else self.em.nodes_of(unit.path)

    def _output(self, unit: Unit) -> str:
        if unit.kind == "leaf":
            return unit.path
        out = self.net.scopes[unit.path].output
        assert out is not None
        return out

    def _flat(self, kids: list[Unit]) -> list[Unit]:
        out: list[Unit] = []
        for k in kids:
            out.append(k)
            if k.kind == "space":
                out += self._flat(k.kids)
        return out

    def _all(self, kids: list[Unit]) -> list[Unit]:
        out: list[Unit] = []
        for k in kids:
            out += [k] + self._all(k.kids)
        return out

    def _module_form(self, name: str) -> bool:
        return self.form(name).module is not None

    def form(self, name: str, render: Callable[[Expr], str] | None = None) -> SourceForm:
        """The node's Python-source form, its arguments rendered by `render` (default: placeholders)."""
        return self._form(NodeArgs(self, name, render))

    def _form(self, args: NodeArgs) -> SourceForm:
        op = REGISTRY[args.node.op]
        if op.source is None:  # the emitter refuses such a graph before writing anything
            raise ValueError(f"op '{op.name}' has no Python-source form")
        form = op.source(args)
        self.em.helpers.update(dict.fromkeys(form.helpers))
        return form

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

    def _call_channels(self, unit: Unit) -> None:
        cls = unit.cls
        assert cls is not None
        _, _, benv = self.blockcalls[self.rel(unit.path)]
        src = self.em.external(self.em.nodes_of(unit.path))[0]
        env = {py: benv[p] for p, py in cls.params}
        env[cls.in_var] = self.ch[src]
        out = self._output(unit)
        self.ch[out] = subst(cls.out_ch, env)
        self.checks.append(("ch", self.rel(out), self.ch[out]))
        for p, _ in cls.params:
            self.checks.append(("arg", self.rel(unit.path), (p, benv[p])))

    def _node_channels(self, n: str) -> None:
        srcs = self.em.inputs[n]
        out = self.form(n).out_ch
        if out is None:
            want = channels(self.em.shape(n))
            same = [s for s in srcs if channels(self.em.shape(s)) == want]
            out = self.ch[same[0]] if same else Lit(0, want)
        self.ch[n] = out
        self.checks.append(("ch", self.rel(n), out))
        self.checks.append(("attrs", self.rel(n), self.attrs(n)))

    def holds(self, base: str, values: dict[str, Any]) -> bool:
        """Whether every size and argument this class computes equals the graph's at the scope `base`."""
        try:
            for kind, rel, what in self.checks:
                name = self.abs(base, rel) if rel else (base or rel)
                if kind == "ch":
                    if evaluate(fold(what), values) != channels(self.em.shape(name)):
                        return False
                elif kind == "arg":
                    p, e = what
                    scope = self.net.scopes[self.abs(base, rel)]
                    if scope.args is None or evaluate(fold(e), values) != scope.args.get(p):
                        return False
                else:
                    node = self.net.nodes[name]
                    got = {k: evaluate(fold(e), values) for k, e in what.items()}
                    if REGISTRY[node.op].attrs.model_validate(got) != node.attrs:
                        return False
            for rel, e in self.repeats.items():
                if evaluate(fold(e), values) != self.net.scopes[self.abs(base, rel)].repeat:
                    return False
        except (ExprError, ValueError, KeyError, TypeError):
            return False
        return True

    # -- constructor ---------------------------------------------------------------------
    def module_expr(self, unit: Unit) -> str:
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
                return call("nn.Sequential", items)
            return call("nn.Sequential", [call("OrderedDict", [
                "[" + ", ".join(f'("{n}", {i})' for n, i in zip(names, items, strict=True)) + "]"])])
        return self._leaf_module(unit.path, in_seq=True) or "nn.Identity()"

    def _call_expr(self, unit: Unit) -> str:
        cls = unit.cls
        assert cls is not None
        self.refs.add(cls.name)
        layer, env, _ = self.blockcalls[self.rel(unit.path)]
        args = [self.ctor_names.render(self.ch[self.em.external(self.em.nodes_of(unit.path))[0]])] if cls.in_ch else []
        py = dict(cls.params)
        args += [self.ctor_names.render(subst(a, env)) for a in layer.call.args]
        args += [f"{py[kw.key]}={self.ctor_names.render(subst(kw.value, env))}" for kw in layer.call.kwargs]
        return call(cls.name, args)

    def _leaf_module(self, name: str, in_seq: bool = False) -> str | None:
        """The text constructing a leaf's module (or its learned tensor); None where forward calls a function."""
        form = self.form(name)
        needed = form.param is not None or (form.module is not None and (in_seq or form.call is None))
        if not needed or (form.identity and not in_seq):
            return None
        form = self.form(name, self.ctor_names.render)
        return form.param if form.param is not None else form.module

    def ctor_lines(self, kids: list[Unit], base: str) -> list[str]:
        lines: list[str] = []
        for k in kids:
            name = k.path.rsplit("/", 1)[-1]
            lines += self._inline_note(k)
            if k.kind == "space":
                lines.append(assign(base, name, "nn.Module()"))
                lines += self.ctor_lines(k.kids, attr(base, name))
                continue
            if k.kind == "leaf":
                expr = self._leaf_module(k.path)
                if expr is None:
                    continue
            else:
                expr = self.module_expr(k)
            lines.append(assign(base, name, expr))
        return lines

    def _inline_note(self, unit: Unit) -> list[str]:
        """Why a use of a block template is written out here instead of being an instance of its class."""
        scope = self.net.scopes.get(unit.path)
        if unit.kind in ("call", "leaf") or scope is None or scope.block is None:
            return []
        why = self.em.why_inline.get(scope.block)
        if why is None:
            several = len(self.em.external(self.em.nodes_of(scope.path))) > 1 or isinstance(scope.input, list)
            why = "it reads several inputs" if several else "nodes inside it are read from outside it"
        text = f"`{scope.label()}` written out inline: {why}"
        return ["# " + line for line in textwrap.wrap(text, 100, break_long_words=False, break_on_hyphens=False)]

    # -- forward -------------------------------------------------------------------------
    def statements(self) -> list[Unit]:
        stmts: list[Unit] = []
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
            out = attr(out, part)
        return out

    def stmt_expr(self, unit: Unit, args: list[str]) -> str | None:
        """The right-hand side computing a unit from its inputs' variables; None passes the input through."""
        if unit.kind != "leaf":
            return f"{self.attr_path(unit.path)}({args[0]})"
        node_args = NodeArgs(self, unit.path, None)
        form = self._form(node_args)
        if form.identity:
            return None
        if form.call is None:
            return f"{self.attr_path(unit.path)}({args[0]})"
        extra = [self.attr_path(unit.path)] if form.param is not None else []
        return node_args.resolve(form.call(args + extra), self.fwd_names.render)

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

    def _assign_vars(self, stmts: list[Unit], ext: list[str], outputs: list[str], train_only: set[int],
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
                var[out] = unique(pyname(self._value_name(out, u.path)), taken)
            lines.append(f"{var[out]} = {expr}")
        for o in outputs:
            if var.get(o) == "x" and o not in held:
                return [], {}, o
        return lines, var, None

    def class_code(self, cls: ClassInfo, ctor: list[str], types: dict[str, str]) -> str:
        fwd: list[str] = []
        if not self.as_seq:
            outputs = [self.scope.output or ""]
            lines, var = self.forward_lines(outputs, set())
            fwd = return_last([line for line in lines if line is not None], var[outputs[0]])
        ctor = ctor + [f"self.{self.fwd_attrs[py]} = {py}" for _, py in cls.params if py in self.fwd_names.used]
        params, defaults = self._signature(cls, types)
        doc = cls.block.doc or f"The `{cls.block.name}` block."
        loc = cls.block.loc
        shown = Names(lambda n: "$" + n)
        written = [p.name + (f"={shown.render(p.default)}" if p.default else "") for p in cls.block.params]
        sig = f"{cls.block.name}({', '.join(written)})"
        body = [f"class {cls.name}(nn.{'Sequential' if self.as_seq else 'Module'}):",
                f'    """{doc}',
                "",
                f"    Spec: `{sig}`, {Path(loc.file).name}:{loc.line}.",
                '    """',
                "",
                def_("    def __init__", ["self"] + params, "None")]
        body += [] if self.as_seq else ["        super().__init__()"]
        body += ["        " + d.replace("\n", "\n        ") for d in defaults]
        body += ["        " + line.replace("\n", "\n        ") for line in ctor]
        if fwd:
            body += ["", "    def forward(self, x: torch.Tensor) -> torch.Tensor:"]
            body += ["        " + line for line in fwd]
        self.code_text = "\n".join(body)
        return self.code_text

    def _signature(self, cls: ClassInfo, types: dict[str, str]) -> tuple[list[str], list[str]]:
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
            default = fold(subst(p.default, env))
            if isinstance(default, Lit):
                params.append(f"{py[p.name]}{hint} = {lit(default.value)}" if hint
                              else f"{py[p.name]}={lit(default.value)}")
            else:
                params.append(f"{py[p.name]}{hint} | None = None" if hint else f"{py[p.name]}=None")
                defaults.append(f"if {py[p.name]} is None:\n    {py[p.name]} = {Names(lambda n: n).render(default)}")
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
            fwd = return_last(kept, var[net.outputs["main"]]) if eval_keys == ["main"] else \
                kept + [f"return {result(eval_keys)}"]
        ret = "torch.Tensor" if eval_keys == train_keys == ["main"] else \
            "dict[str, torch.Tensor]" if eval_keys != ["main"] else "torch.Tensor | dict[str, torch.Tensor]"
        doc = [f'    """The network `{net.name}`: `forward` takes N×{"×".join(map(str, self.em.typed.input_shape))}.']
        if train_keys != eval_keys:
            doc.append("")
            doc.append(f"    In eval mode it returns {describe(eval_keys)}; in training mode the dict")
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
