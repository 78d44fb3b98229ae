"""Stage 3, expand: `Spec` -> `Network` of primitive nodes.

Blocks are instantiated with their arguments, `repeat:` is unrolled, argument
expressions are evaluated, and each op's attributes are validated by its
pydantic model. Every node keeps the chain of call sites it came from (the
user's line first, the template line last). References (`from:`, merge
arguments) are left as `Ref`s for the graph stage to resolve, so that
forward references, cycles and unknown names are all reported in one place.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .errors import Diagnostics, Location, did_you_mean
from .expr import Bin, Expr, ExprError, Fn, Name, Seq, Unary, Var, evaluate
from .ir import INPUT, Network, Node, Ref, Scope, ScopeKind, Source, join, parent
from .ops import REGISTRY, Op
from .spec import BlockDef, CallLayer, Construct, HeadDef, Layer, SeqLayer, Spec

MAX_NODES = 200_000
MAX_DEPTH = 64
MAX_REPEAT = 10_000

Input = Source | list[Source] | None

FAILED = "<failed>"
"""The input of a layer that follows a failed one: it is still checked, but makes no node."""


def expand(spec: Spec) -> Network:
    """Expand a validated spec; raises SpecError listing every fault found."""
    exp = _Expander(spec)
    net = exp.run()
    exp.diags.raise_if_errors(net.sources)
    return net


class _Expander:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.diags = Diagnostics()
        self.nodes: dict[str, Node] = {}
        self.scopes: dict[str, Scope] = {}
        self.stack: list[str] = []
        self.head: str | None = None
        self.train_only = False
        self.too_large = False
        self.valid_attrs: dict[tuple, Any] = {}
        """Validated attributes of an op's call, and the arguments bound by a block's call (with the variables
        its body sees), by `call_key`."""
        self.bound_args: dict[tuple, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.reads: dict[int, tuple[str, ...]] = {}
        self.keys: dict[tuple[int, int], tuple[dict, tuple | None]] = {}
        """`call_key` by the ids of the call and of the variables' dict, which the entry keeps alive."""
        self.merge_attrs: dict[str, Any] = {}

    def run(self) -> Network:
        spec = self.spec
        sources = {spec.file: spec.source.text}
        self.nodes[INPUT] = Node(INPUT, "input", None, [], ())
        self.scopes[""] = Scope("", "root", None, input=INPUT)
        outputs: dict[str, str] = {}
        main = self.layer(spec.body, "", INPUT, spec.vars, ())
        self.scopes[""].output = main
        if main:
            outputs["main"] = main
        heads = {}
        for name, head in spec.heads.items():
            if not self.head_wanted(head):
                continue
            if name in self.scopes or name in self.nodes:
                self.diags.error("duplicate-name", f"head '{name}' has the name of a node of the main network",
                                 loc=head.loc, hint="give the head another name")
                continue
            self.head, self.train_only = name, head.train_only
            self.scope(name, "head", head.loc)
            out = self.layer(head.layer, name, None, spec.vars, ())
            self.scopes[name].output = out
            if out:
                outputs[name] = out
            heads[name] = head
        self.head, self.train_only = None, False
        return Network(spec.name, spec.file, spec.input, self.nodes, self.scopes, outputs, heads, sources, spec)

    def head_wanted(self, head: HeadDef) -> bool:
        """Evaluate a head's `when:`; a head without one is always built."""
        if head.when is None:
            return True
        value = self.eval(head.when, self.spec.vars, lambda off: head.loc)
        if not isinstance(value, bool):
            if value is not _EVAL_FAILED:
                self.diags.error("wrong-type", f"`when:` of head '{head.name}' must be true or false",
                                 loc=head.loc, found=repr(value), hint="e.g. when: $aux_logits")
            return False
        return value

    # -- structure --------------------------------------------------------
    def scope(self, path: str, kind: ScopeKind, loc: Location | None, **kw: Any) -> Scope:
        scope = self.scopes.get(path)
        if scope is None:
            scope = self.scopes[path] = Scope(path, kind, loc, head=self.head, **kw)
            up = self.scopes.get(parent(path)) if path else None
            if up is not None:
                up.children.append(path)
        else:  # an enclosing construct got here first (a head whose body is a block): fill in what it lacks
            for key, value in kw.items():
                if getattr(scope, key) is None:
                    setattr(scope, key, value)
        return scope

    def layer(self, layer: Layer, path: str, inp: Input, env: dict, trace: tuple) -> str | None:
        if isinstance(layer, CallLayer):
            return self.call(layer, path, inp, env, trace)
        if isinstance(layer, SeqLayer):
            self.scope(path, "seq", layer.loc, input=inp)
            cur: Input = inp
            for item in layer.items:  # after a failed item, go on with FAILED to report later faults too
                cur = self.layer(item.layer, join(path, item.name), cur, env, trace) or FAILED
            return self._finish(path, cur)
        return self.construct(layer, path, inp, env, trace)

    def construct(self, c: Construct, path: str, inp: Input, env: dict, trace: tuple) -> str | None:
        if c.from_ is not None:
            refs: list[Source] = [Ref(r.name, parent(path), r.loc) for r in c.from_]
            inp = refs[0] if len(refs) == 1 else refs
        if c.repeat is not None:
            return self.repeat(c, path, inp, env, trace)
        if c.kind == "body":
            assert c.body is not None
            out = self.layer(c.body, path, inp, env, trace)
            if path in self.scopes and out is not None and self.scopes[path].output is None:
                self.scopes[path].output = out
            return out
        scope = self.scope(path, "merge", c.loc, input=inp)
        outs = [self.layer(b.layer, join(path, b.name), inp, env, trace) for b in c.branches]
        branch_outputs: list[Source] = [o for o in outs if o is not None]
        if len(branch_outputs) != len(outs) or not outs:
            return None
        name = path or c.kind
        if c.kind not in self.merge_attrs:  # one object for every concat (add), as for every same op call
            self.merge_attrs[c.kind] = REGISTRY[c.kind].attrs()
        self.add_node(Node(name, c.kind, self.merge_attrs[c.kind], branch_outputs, trace + (c.loc,),
                           self.head, self.train_only))
        scope.output = name
        return name

    def repeat(self, c: Construct, path: str, inp: Input, env: dict, trace: tuple) -> str | None:
        assert c.repeat is not None and c.body is not None
        n = self.eval(c.repeat, env, lambda off: c.loc)
        if n is None:
            return None
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_REPEAT:
            self.diags.error("wrong-type", "repeat: needs a whole number of copies", loc=c.loc,
                             expected=f"1 to {MAX_REPEAT}", found=repr(n))
            return None
        self.scope(path, "repeat", c.loc, input=inp, repeat=n)
        cur: Input = inp
        for i in range(n):
            cur = self.layer(c.body, join(path, str(i)), cur, env, trace) or FAILED
        return self._finish(path, cur)

    def _finish(self, path: str, out: Input) -> str | None:
        """Record the output of the scope at `path`; None if any part of it failed."""
        if not isinstance(out, str) or out == FAILED:
            return None
        self.scopes[path].output = out
        return out

    # -- calls ------------------------------------------------------------
    def call(self, layer: CallLayer, path: str, inp: Input, env: dict, trace: tuple) -> str | None:
        name = layer.call.name
        if name in self.spec.blocks:
            return self.instance(self.spec.blocks[name], layer, path, inp, env, trace)
        op = REGISTRY.get(name)
        if op is None:
            known = list(REGISTRY) + list(self.spec.blocks)
            self.diags.error("unknown-op", f"unknown op or block '{name}'", loc=layer.loc_at(layer.call.pos),
                             path=path or None, span=len(name), found=name,
                             hint=(did_you_mean(name, known) or "ops: " + ", ".join(sorted(REGISTRY)))
                             + "; an op of a plugin needs the plugin loaded: --plugin MODULE (docs/plugins.md)")
            return None
        return self.primitive(op, layer, path, inp, env, trace)

    def primitive(self, op: Op, layer: CallLayer, path: str, inp: Input, env: dict, trace: tuple) -> str | None:
        call = layer.call
        args: tuple = call.args
        if op.arity is None and args:
            refs = [a for a in args if isinstance(a, Name)]
            if len(refs) != len(args):
                bad = next(a for a in args if not isinstance(a, Name))
                self.diags.error("bad-reference", f"{op.name}() takes the names of its inputs",
                                 loc=layer.loc_at(bad.pos), path=path, hint=f"e.g. {op.name}(branch0, branch1)")
                return None
            inputs: list[Source] = [Ref(r.id, parent(path), layer.loc_at(r.pos)) for r in refs]
            args = ()
        elif isinstance(inp, list):
            if op.arity is not None:
                self.diags.error("wrong-arity", f"{op.name} takes one input, but `from:` gives {len(inp)}",
                                 loc=layer.loc, path=path, hint="merge them first with concat or add")
                return None
            inputs = list(inp)
        else:
            inputs = [inp] if inp is not None else []
        if not inputs:
            self.diags.error("missing-input", f"{op.name} has no input", loc=layer.loc, path=path or None,
                             hint="a head's body needs `from:`; concat/add need the names of their inputs")
            return None
        attrs = self.attrs(op, layer, args, path, env, trace)
        if attrs is None or FAILED in inputs:
            return None
        name = path or op.name
        node = Node(name, op.name, attrs, inputs, trace + (layer.loc,), self.head, self.train_only)
        return name if self.add_node(node) else None

    def attrs(self, op: Op, layer: CallLayer, args: tuple, path: str, env: dict, trace: tuple = ()) -> Any:
        call = layer.call
        memo = self.call_key(layer, env)
        known = self.valid_attrs.get(memo) if memo is not None else None
        if known is not None:
            return known
        fields = op.positional
        if len(args) > len(fields):
            extra = args[len(fields)]
            self.diags.error("too-many-arguments", f"{op.name}() takes at most {len(fields)} positional "
                             f"argument{'s' if len(fields) != 1 else ''}", loc=layer.loc_at(extra.pos), path=path,
                             expected=op.signature(), found=f"{len(args)} arguments")
            return None
        values: dict[str, Any] = {}
        where: dict[str, int] = {}
        for field, arg in zip(fields, args, strict=False):
            values[field], where[field] = self.eval(arg, env, layer.loc_at), arg.pos
        for kw in call.kwargs:
            values[kw.key], where[kw.key] = self.eval(kw.value, env, layer.loc_at), kw.pos
        if any(v is _EVAL_FAILED for v in values.values()):
            return None
        try:
            attrs = op.attrs.model_validate(values)
        except ValidationError as exc:
            used = [(trace[0], "in the block used here")] if trace else []
            for err in exc.errors():
                key = str(err["loc"][0]) if err["loc"] else ""
                loc = layer.loc_at(where.get(key, call.pos))
                if err["type"] == "extra_forbidden":
                    self.diags.error("unknown-argument", f"{op.name}() has no argument '{key}'", loc=loc,
                                     path=path, expected=op.signature(), span=len(key),
                                     hint=did_you_mean(key, op.arg_names()), notes=used)
                elif err["type"] == "missing":
                    self.diags.error("missing-argument", f"{op.name}() needs argument '{key}'", loc=loc,
                                     path=path, expected=op.signature(), notes=used)
                else:
                    self.diags.error("bad-argument", f"{op.name}() argument '{key}': {err['msg'].lower()}",
                                     loc=loc, path=path, found=repr(err.get("input")), expected=op.signature(),
                                     notes=used)
            return None
        if memo is not None:
            self.valid_attrs[memo] = attrs
        return attrs

    def instance(self, block: BlockDef, layer: CallLayer, path: str, inp: Input, env: dict,
                 trace: tuple) -> str | None:
        if block.name in self.stack or len(self.stack) >= MAX_DEPTH:
            chain = " → ".join(self.stack + [block.name])
            self.diags.error("recursive-block", f"block '{block.name}' uses itself ({chain})", loc=layer.loc,
                             path=path, hint="a block cannot contain itself, directly or through other blocks")
            return None
        bound = self.bind(block, layer, path, env)
        if bound is None:
            return None
        args, body_env = bound
        self.scope(path, "block", layer.loc, input=inp, block=block.name, args=dict(args))
        self.stack.append(block.name)
        try:
            out = self.layer(block.layer, path, inp, body_env, trace + (layer.loc,))
        finally:
            self.stack.pop()
        if out is not None:
            self.scopes[path].output = out
        return out

    def bind(self, block: BlockDef, layer: CallLayer, path: str,
             env: dict) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The arguments of a block's call, and the variables its body sees: the spec's with them.

        One pair of dicts per distinct outcome, shared by the calls that have it (never mutated), so
        that `call_key` knows the calls in the body by the identity of their variables.
        """
        memo = self.call_key(layer, env)
        if memo is not None and memo in self.bound_args:
            return self.bound_args[memo]
        call = layer.call
        params = block.params
        if len(call.args) > len(params):
            extra = call.args[len(params)]
            self.diags.error("too-many-arguments", f"{block.name}() takes {len(params)} arguments",
                             loc=layer.loc_at(extra.pos), path=path, expected=_signature(block),
                             found=f"{len(call.args)} arguments", notes=_defined(block))
            return None
        bound: dict[str, Any] = {}
        names = {p.name for p in params}
        for kw in call.kwargs:
            if kw.key not in names:
                self.diags.error("unknown-argument", f"{block.name}() has no parameter '{kw.key}'",
                                 loc=layer.loc_at(kw.pos), path=path, expected=_signature(block), span=len(kw.key),
                                 hint=did_you_mean(kw.key, names), notes=_defined(block))
                return None
        given = {p.name: a for p, a in zip(params, call.args, strict=False)}
        if overlap := set(given) & {kw.key for kw in call.kwargs}:
            key = sorted(overlap)[0]
            self.diags.error("duplicate-argument", f"{block.name}() got '{key}' twice (by position and by name)",
                             loc=layer.loc_at(call.pos), path=path, expected=_signature(block))
            return None
        given.update({kw.key: kw.value for kw in call.kwargs})
        missing = [p.name for p in params if p.name not in given and p.default is None]
        if missing:
            self.diags.error("missing-argument", f"{block.name}() is missing {len(missing)} argument"
                             f"{'s' if len(missing) > 1 else ''}: {', '.join(missing)}",
                             loc=layer.loc_at(call.pos), path=path, span=len(call.name), expected=_signature(block),
                             found=f"{len(call.args)} positional argument{'s' if len(call.args) != 1 else ''}"
                                   + (f" and {len(call.kwargs)} by name" if call.kwargs else ""),
                             notes=_defined(block))
            return None
        for p in params:
            if p.name in given:
                value = self.eval(given[p.name], env, layer.loc_at)
            else:
                assert p.default is not None
                value = self.eval(p.default, {**self.spec.vars, **bound}, lambda off, p=p: p.loc)
            if value is _EVAL_FAILED:
                return None
            bound[p.name] = value
        result = bound, {**self.spec.vars, **bound}
        if memo is not None:
            self.bound_args[memo] = result
        return result

    def call_key(self, layer: CallLayer, env: dict) -> tuple | None:
        """What the outcome of a call depends on: the call and the values of the variables its arguments read.

        So a block used N times evaluates and validates its calls' arguments once per distinct
        set of values (only outcomes without faults are kept). Values Python holds equal (1, 1.0,
        True) are told apart by type; None if a variable is missing or a value cannot be hashed
        (then the call is evaluated as usual). The call is its parsed text, which validate shares
        between lines that read the same; the key is computed once per dict of variables (the
        variables of a block's body are one dict per distinct binding: see `bind`).
        """
        call = layer.call
        known = self.keys.get((id(call), id(env)))
        if known is not None:
            return known[1]
        names = self.reads.get(id(call))
        if names is None:
            found: dict[str, None] = {}
            for e in (*call.args, *(kw.value for kw in call.kwargs)):
                _variables(e, found)
            names = self.reads[id(call)] = tuple(found)
        key: tuple | None
        try:
            key = (id(call), tuple(_typed(env[n]) for n in names))
            hash(key)
        except (KeyError, TypeError):
            key = None
        self.keys[(id(call), id(env))] = (env, key)
        return key

    # -- helpers ----------------------------------------------------------
    def eval(self, e: Any, env: dict, locate: Any) -> Any:
        try:
            return evaluate(e, env)
        except ExprError as exc:
            self.diags.error(exc.code, exc.message, loc=locate(exc.pos), hint=exc.hint, span=exc.span)
            return _EVAL_FAILED

    def add_node(self, node: Node) -> bool:
        if len(self.nodes) >= MAX_NODES:
            if not self.too_large:
                self.diags.error("too-large", f"the network expands to more than {MAX_NODES:,} nodes",
                                 loc=node.loc, hint="check repeat: counts")
                self.too_large = True
            return False
        if node.name in self.nodes:
            self.diags.error("duplicate-name", f"two nodes are named '{node.name}'", loc=node.loc, path=node.name,
                             notes=[(first.loc, "first defined here")] if (first := self.nodes[node.name]).loc else [])
            return False
        self.nodes[node.name] = node
        scope = self.scopes.get(node.name) or self.scopes.get(parent(node.name))
        if scope is not None:
            scope.children.append(node.name)
        return True


_EVAL_FAILED = object()


def _variables(e: Expr, found: dict[str, None]) -> None:
    """Add the names of the variables expression `e` reads to `found`."""
    if isinstance(e, Var):
        found[e.name] = None
    for child in (e.items if isinstance(e, Seq) else e.args if isinstance(e, Fn) else
                  (e.operand,) if isinstance(e, Unary) else (e.left, e.right) if isinstance(e, Bin) else ()):
        _variables(child, found)


def _typed(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return (type(v), tuple(_typed(x) for x in v))
    return (type(v), v)


def _signature(block: BlockDef) -> str:
    return f"{block.name}({', '.join(p.name for p in block.params)})"


def _defined(block: BlockDef) -> list[tuple[Location, str]]:
    return [(block.loc, f"'{block.name}' is defined here")]


