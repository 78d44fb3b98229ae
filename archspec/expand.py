"""Stage 3, expand: `Spec` -> `Network` of primitive nodes.

Blocks are instantiated with their arguments, `repeat:` is unrolled, `when:`
is decided, `splice:` items join their list, argument expressions are
evaluated, and each op's attributes are validated by its pydantic model. A
block whose template reads `$in` gets its input's shape, inferred on demand
from the nodes made so far (each node's shape worked out once, by the same
shape rules and reference rules the later stages use). Every node keeps the chain of call sites it came from (the
user's line first, the template line last). References (`from:`, merge
arguments) are left as `Ref`s for the graph stage to resolve, so that
forward references, cycles and unknown names are all reported in one place.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .errors import Diagnostics, Location, did_you_mean
from .expr import ChannelsLastShape, Expr, ExprError, Lit, Name, Shape, TokensShape, Var, evaluate, variables
from .graph import Resolver
from .ir import INPUT, Network, Node, Ref, Scope, ScopeKind, Source, join, parent
from .ops import REGISTRY, Op, ShapeError
from .ops.common import fmt_shape
from .ops.registry import ChannelsLast, Tokens
from .spec import ITEM_PATTERN, BlockDef, CallLayer, Construct, HeadDef, Layer, Pattern, SeqLayer, Spec
from .validate import RESERVED_NAMES

MAX_NODES = 200_000
MAX_DEPTH = 64
MAX_REPEAT = 10_000
MAX_NESTING = 256
"""Layers inside one another, counted through block calls (64 blocks, each a few levels deep)."""
STACK = 6_000
"""The recursion limit while expanding: each level of nesting takes a few Python frames (cheap since 3.11)."""

Input = Source | list[Source] | None

FAILED = "<failed>"
"""The input of a layer that follows a failed one: it is still checked, but makes no node."""

ITEM = re.compile(ITEM_PATTERN)


@dataclass
class _List:
    """A sequence being expanded: its path, current output, and the next number of an unnamed item."""

    path: str
    cur: Input
    named: bool
    count: int = 0


def expand(spec: Spec) -> Network:
    """Expand a validated spec; raises SpecError listing every fault found."""
    exp = _Expander(spec)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, STACK))
    try:
        net = exp.run()
    finally:
        sys.setrecursionlimit(limit)
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
        self.depth = 0
        self.least_nodes: dict[str, int] = {}
        """`least` of each block's body, once worked out."""
        self.valid_attrs: dict[tuple, Any] = {}
        """Validated attributes of an op's call, and the arguments bound by a block's call (with the variables
        its body sees), by `call_key`."""
        self.bound_args: dict[tuple, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.read_vars: dict[int, tuple[str, ...]] = {}
        self.keys: dict[tuple[int, int], tuple[dict, tuple | None]] = {}
        """`call_key` by the ids of the call and of the variables' dict, which the entry keeps alive."""
        self.merge_attrs: dict[str, Any] = {}
        self.net = Network(spec.name, spec.file, spec.input, self.nodes, self.scopes, {}, {}, spec.sources, spec)
        self.resolver = Resolver(self.net, Diagnostics())
        self.shapes: dict[str, tuple[int, ...] | None] = {INPUT: tuple(spec.input)}
        """Output shapes of nodes worked out for `$in` (None: unknown, its fault reported)."""
        self.scanned: dict[tuple[int, str], bool] = {}

    def run(self) -> Network:
        spec = self.spec
        self.nodes[INPUT] = Node(INPUT, "input", None, [], ())
        self.scopes[""] = Scope("", "root", None, input=INPUT)
        outputs: dict[str, str] = {}
        main = self.settle(self.layer(spec.body, "", INPUT, spec.vars, ()))
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
            out = self.settle(self.layer(head.layer, name, None, spec.vars, ()))
            self.scopes[name].output = out
            if out:
                outputs[name] = out
            heads[name] = head
        self.head, self.train_only = None, False
        self.net.outputs, self.net.heads = outputs, heads
        return self.net

    def settle(self, out: Input) -> str | None:
        """The node an output stands for (an absent last layer passes on a reference), once every node exists."""
        if out is None or isinstance(out, str):
            return None if out == FAILED else out
        if isinstance(out, list):
            return None
        diags = Diagnostics()
        node = Resolver(self.net, diags).source(out)
        self.diags.items.extend(diags.items)
        return node

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

    def layer(self, layer: Layer, path: str, inp: Input, env: dict, trace: tuple) -> Input:
        """Expand a layer reading `inp`: its output (a node name, or what an absent layer passes on), None if
        it failed."""
        if self.too_large:  # past the node limit nothing more is expanded: it could go on for hours
            return None
        if self.depth >= MAX_NESTING:
            self.diags.error("too-deep", f"layers nested deeper than {MAX_NESTING} levels, through the blocks they "
                             "call", loc=layer.loc, path=path or None,
                             expected=f"at most {MAX_NESTING} levels", hint="flatten the nesting")
            self.too_large = True  # reported once; as past the node limit, nothing more is expanded
            return None
        self.depth += 1
        try:
            return self._layer(layer, path, inp, env, trace)
        finally:
            self.depth -= 1

    def _layer(self, layer: Layer, path: str, inp: Input, env: dict, trace: tuple) -> Input:
        if isinstance(layer, CallLayer):
            return self.call(layer, path, inp, env, trace)
        if isinstance(layer, SeqLayer):
            self.scope(path, "seq", layer.loc, input=inp)
            seq = _List(path, inp, layer.named)
            for item in layer.items:  # after a failed item, go on with FAILED to report later faults too
                self.item(item.layer, item.name, seq, env, trace)
            return self._finish(path, seq.cur)
        return self.construct(layer, path, inp, env, trace)

    def item(self, layer: Layer, key: str | None, seq: _List, env: dict, trace: tuple) -> None:
        """Expand one item of a sequence: numbered in a list, named by its key in a mapping, or by `name:`."""
        if isinstance(layer, Construct) and layer.kind == "splice":
            if seq.named:
                self.diags.error("bad-construct", "splice: goes in a list, whose items it joins (numbered)",
                                 loc=layer.loc, path=seq.path or None,
                                 hint="write the enclosing layers as a list, or use body:")
                seq.cur = FAILED
                return
            self.splice(layer, seq, env, trace)
            return
        name = key if seq.named and key is not None else str(seq.count)
        if isinstance(layer, Construct) and layer.name is not None:
            given = self.pattern(layer.name, env, None, seq.path)
            if given is None:
                seq.cur = FAILED
                return
            name = given
        seq.count += 1
        out = self.layer(layer, join(seq.path, name), seq.cur, env, trace)
        seq.cur = out if out is not None else FAILED

    def splice(self, c: Construct, seq: _List, env: dict, trace: tuple) -> None:
        """A `splice:` (or the construct of a spliced block): its items join the list `seq`."""
        assert c.body is not None
        if c.when is not None:
            present = self.when(c, env)
            if present is not True:
                if present is not False:
                    seq.cur = FAILED
                return
        if c.from_ is not None:
            refs: list[Source] = [Ref(r.name, seq.path, r.loc) for r in c.from_]
            seq.cur = refs[0] if len(refs) == 1 else refs
        if c.repeat is None:
            self.splice_layer(c.body, seq, env, trace)
            return
        count = self.count(c, env)
        if count is None or self.refuse_size(count * self.least(c.body), "repeat: makes", c.loc, seq.path):
            seq.cur = FAILED
            return
        for i in range(count):
            self.splice_layer(c.body, seq, self.with_index(c, env, i), trace)

    def splice_layer(self, layer: Layer, seq: _List, env: dict, trace: tuple) -> None:
        if isinstance(layer, SeqLayer):
            if layer.named:
                self.diags.error("bad-construct", "splice: takes a list of layers, not a mapping with names",
                                 loc=layer.loc, path=seq.path or None, hint="write the layers as a list, or use body:")
                seq.cur = FAILED
                return
            for item in layer.items:
                self.item(item.layer, None, seq, env, trace)
            return
        if isinstance(layer, Construct):
            if layer.kind in ("body", "splice") and layer.name is None:
                self.splice(layer, seq, env, trace)
            else:
                self.item(layer, None, seq, env, trace)
            return
        path = join(seq.path, str(seq.count))
        name = self.callee(layer, env, path)
        if name is None:
            seq.cur = FAILED
            return
        block = self.spec.blocks.get(name)
        if block is None:  # an op: one item
            self.item(layer, None, seq, env, trace)
            return
        if not self.enter(block, layer, path):
            seq.cur = FAILED
            return
        try:
            bound = self.bind(block, layer, path, env, seq.cur)
            if bound is None:
                seq.cur = FAILED
                return
            self.splice_layer(block.layer, seq, bound[1], trace + (layer.loc,))
        finally:
            self.stack.pop()

    def construct(self, c: Construct, path: str, inp: Input, env: dict, trace: tuple) -> Input:
        if c.kind == "splice":
            self.diags.error("bad-construct", "splice: goes in a list, whose items it joins", loc=c.loc,
                             path=path or None, hint="use body: here")
            return None
        if c.from_ is not None:
            refs: list[Source] = [Ref(r.name, parent(path), r.loc) for r in c.from_]
            inp = refs[0] if len(refs) == 1 else refs
        if c.when is not None:
            present = self.when(c, env)
            if present is not True:
                if present is False and path:  # absent: a reference to it reads what it would have read
                    self.net.aliases[path] = inp
                return inp if present is False else None
        if c.repeat is not None:
            return self.repeat(c, path, inp, env, trace)
        if c.kind == "body":
            assert c.body is not None
            out = self.layer(c.body, path, inp, env, trace)
            if path in self.scopes and isinstance(out, str) and out != FAILED and self.scopes[path].output is None:
                self.scopes[path].output = out
            return out
        scope = self.scope(path, "merge", c.loc, input=inp)
        outs: list[Input] = []
        for b in c.branches:
            name = b.name
            if isinstance(b.layer, Construct) and b.layer.name is not None:
                given = self.pattern(b.layer.name, env, None, path)
                if given is None:
                    return None
                name = given
            outs.append(self.layer(b.layer, join(path, name), inp, env, trace))
        branch_outputs: list[Source] = [o for o in outs if o is not None and not isinstance(o, list) and o != FAILED]
        if len(branch_outputs) != len(outs) or not outs:
            return None
        name = path or c.kind
        if c.kind not in self.merge_attrs:  # one object for every concat (add), as for every same op call
            self.merge_attrs[c.kind] = REGISTRY[c.kind].attrs()
        self.add_node(Node(name, c.kind, self.merge_attrs[c.kind], branch_outputs, trace + (c.loc,),
                           self.head, self.train_only))
        scope.output = name
        return name

    def when(self, c: Construct, env: dict) -> Any:
        """A construct's `when:`: True, False, or _EVAL_FAILED (reported)."""
        assert c.when is not None
        value = self.eval(c.when, env, lambda off: c.loc)
        if value is _EVAL_FAILED:
            return value
        if not isinstance(value, bool):
            self.diags.error("wrong-type", "`when:` must be true or false", loc=c.loc, found=repr(value),
                             hint="a condition such as $s != 1 or $in.c != $out")
            return _EVAL_FAILED
        return value

    def count(self, c: Construct, env: dict) -> int | None:
        assert c.repeat is not None
        n = self.eval(c.repeat, env, lambda off: c.loc)
        if n is _EVAL_FAILED:
            return None
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_REPEAT:
            self.diags.error("wrong-type", "repeat: needs a whole number of copies", loc=c.loc,
                             expected=f"1 to {MAX_REPEAT}", found=repr(n))
            return None
        return n

    def with_index(self, c: Construct, env: dict, i: int) -> dict:
        """The variables of copy `i` of a repeat: `$i` is its index from 0 (set only where the copy reads it)."""
        assert c.body is not None
        if not self.reads(c.body, "i") and not _pattern_reads(c.names, "i"):
            return env
        return {**env, "i": i}

    def repeat(self, c: Construct, path: str, inp: Input, env: dict, trace: tuple) -> Input:
        assert c.repeat is not None and c.body is not None
        n = self.count(c, env)
        if n is None or self.refuse_size(n * self.least(c.body), "repeat: makes", c.loc, path):
            return None
        first: Any = 0
        if c.start is not None:
            first = self.eval(c.start, env, lambda off: c.loc)
            if first is _EVAL_FAILED:
                return None
            if isinstance(first, bool) or not isinstance(first, int) or first < 0:
                self.diags.error("wrong-type", "start: needs a whole number of at least 0", loc=c.loc,
                                 found=repr(first))
                return None
        self.scope(path, "repeat", c.loc, input=inp, repeat=n)
        cur: Input = inp
        for i in range(n):
            copy_env = self.with_index(c, env, i)
            name = str(first + i) if c.names is None else self.pattern(c.names, copy_env, first + i, path)
            if name is None:
                return None
            cur = self.layer(c.body, join(path, name), cur, copy_env, trace) or FAILED
        return self._finish(path, cur)

    def pattern(self, p: Pattern, env: dict, number: int | None, path: str) -> str | None:
        """The name a `name:` or `names:` pattern gives; None if it fails (reported)."""
        text = ""
        for part in p.parts:
            if isinstance(part, str):
                text += part
            elif isinstance(part, Name) and part.id == "i" and number is not None:
                text += str(number)
            else:
                value = self.eval(part, env, lambda off: p.loc)
                if value is _EVAL_FAILED:
                    return None
                if isinstance(value, bool) or not isinstance(value, (int, str)):
                    self.diags.error("wrong-type", "a part of a name must be a whole number or a word", loc=p.loc,
                                     path=path or None, found=repr(value))
                    return None
                text += str(value)
        if not ITEM.match(text):
            self.diags.error("bad-name", f"'{text}' is not a name", loc=p.loc, path=path or None, found=text,
                             expected="letters, digits, _ and -, not starting with -")
            return None
        if text in RESERVED_NAMES or text.startswith("_"):
            self.diags.error("reserved-name", f"'{text}' is reserved and cannot name a node", loc=p.loc,
                             path=path or None, hint=f"rename it, e.g. '{text.strip('_')}_'")
            return None
        return text

    def reads(self, layer: Layer, var: str) -> bool:
        """Whether `layer` reads `$var` itself (the bodies of the blocks it calls have their own variables)."""
        key = (id(layer), var)
        known = self.scanned.get(key)
        if known is None:
            known = self.scanned[key] = _reads(layer, var)
        return known

    def _finish(self, path: str, out: Input) -> Input:
        """Record the output of the scope at `path`; None if any part of it failed.

        An output that is not yet a node (the last layer was absent and passes on a reference) makes the
        scope an alias of it."""
        if out is None or out == FAILED:
            return None
        if isinstance(out, str):
            self.scopes[path].output = out
        elif path:
            self.net.aliases[path] = out
        return out

    # -- calls ------------------------------------------------------------
    def call(self, layer: CallLayer, path: str, inp: Input, env: dict, trace: tuple) -> Input:
        name = self.callee(layer, env, path)
        if name is None:
            return None
        if name in self.spec.blocks:
            return self.instance(self.spec.blocks[name], layer, path, inp, env, trace)
        return self.primitive(REGISTRY[name], layer, path, inp, env, trace)

    def callee(self, layer: CallLayer, env: dict, path: str) -> str | None:
        """The op or block a call names, directly or through a variable (`$block(64)`); None if unknown."""
        name = layer.call.name
        var = layer.call.callee_var
        held = ""
        if var is not None:
            value = self.eval(Var(layer.call.pos, var), env, layer.loc_at)
            if value is _EVAL_FAILED:
                return None
            held = f" (the value of ${var})"
            if not isinstance(value, str):
                self.diags.error("unknown-op", f"${var} must name an op or a block", loc=layer.loc_at(layer.call.pos),
                                 path=path or None, span=len(name), found=repr(value),
                                 hint=f"e.g. {var}=relu, or the name of a block")
                return None
            name = value
        if name in self.spec.blocks or name in REGISTRY:
            return name
        known = list(REGISTRY) + list(self.spec.blocks)
        self.diags.error("unknown-op", f"unknown op or block '{name}'{held}", loc=layer.loc_at(layer.call.pos),
                         path=path or None, span=len(layer.call.name), found=name,
                         hint=(did_you_mean(name, known) or "ops: " + ", ".join(sorted(REGISTRY)))
                         + "; an op of a plugin needs the plugin loaded: --plugin MODULE (docs/plugins.md)")
        return None

    def primitive(self, op: Op, layer: CallLayer, path: str, inp: Input, env: dict, trace: tuple) -> str | None:
        call = layer.call
        args: tuple = call.args
        if op.arity is None and args:
            refs = [a for a in args if isinstance(a, Name) or (isinstance(a, Lit) and isinstance(a.value, str))]
            if len(refs) != len(args):
                bad = next(a for a in args if a not in refs)
                self.diags.error("bad-reference", f"{op.name}() takes the names of its inputs",
                                 loc=layer.loc_at(bad.pos), path=path, hint=f"e.g. {op.name}(branch0, branch1)")
                return None
            inputs: list[Source] = [Ref(r.id if isinstance(r, Name) else r.value, parent(path), layer.loc_at(r.pos))
                                    for r in refs]
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

    def enter(self, block: BlockDef, layer: CallLayer, path: str) -> bool:
        """Push `block` on the stack of blocks being expanded; False (reported) if it would recurse."""
        if block.name in self.stack:
            chain = " → ".join(self.stack + [block.name])
            self.diags.error("recursive-block", f"block '{block.name}' uses itself ({chain})", loc=layer.loc,
                             path=path, hint="a block cannot contain itself, directly or through other blocks")
            return False
        if len(self.stack) >= MAX_DEPTH:
            self.diags.error("too-deep", f"blocks nested deeper than {MAX_DEPTH} levels", loc=layer.loc, path=path,
                             expected=f"at most {MAX_DEPTH} blocks inside one another",
                             found=f"{' → '.join(self.stack[:3])} → ... → {block.name}",
                             hint="flatten the chain: let a block list more layers instead of calling the next block")
            return False
        if self.refuse_size(self.least(block.layer, block.name), f"block '{block.name}' makes", layer.loc, path):
            return False
        self.stack.append(block.name)
        return True

    def instance(self, block: BlockDef, layer: CallLayer, path: str, inp: Input, env: dict,
                 trace: tuple) -> Input:
        if not self.enter(block, layer, path):
            return None
        try:
            bound = self.bind(block, layer, path, env, inp)
            if bound is None:
                return None
            args, body_env = bound
            given = tuple(p.name for p in block.params[:len(layer.call.args)]) + tuple(k.key for k in layer.call.kwargs)
            self.scope(path, "block", layer.loc, input=inp, block=block.name, args=dict(args), given=given,
                       by_name=len(layer.call.kwargs))
            out = self.layer(block.layer, path, inp, body_env, trace + (layer.loc,))
        finally:
            self.stack.pop()
        if isinstance(out, str) and out != FAILED:
            self.scopes[path].output = out
        return out

    def bind(self, block: BlockDef, layer: CallLayer, path: str, env: dict,
             inp: Input = None) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The arguments of a block's call, and the variables its body sees: the spec's with them (and `$in`,
        the shape of `inp`, if the template reads it).

        One pair of dicts per distinct outcome, shared by the calls that have it (never mutated), so
        that `call_key` knows the calls in the body by the identity of their variables.
        """
        memo = self.call_key(layer, env)
        shape: Any = None
        if self.reads_in(block):
            shape = self.input_shape(inp, layer, path)
            if shape is _EVAL_FAILED:
                return None
            memo = None if memo is None else memo + (_typed(shape),)
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
        shown = {"in": shape} if shape is not None else {}
        for p in params:
            if p.name in given:
                value = self.eval(given[p.name], env, layer.loc_at)
            else:
                assert p.default is not None
                value = self.eval(p.default, {**self.spec.vars, **shown, **bound}, lambda off, p=p: p.loc)
            if value is _EVAL_FAILED:
                return None
            bound[p.name] = value
        result = bound, {**self.spec.vars, **shown, **bound}
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
        names = self.read_vars.get(id(call))
        if names is None:
            found: dict[str, None] = {}
            if call.callee_var is not None:  # the same text may call another op or block
                found[call.callee_var] = None
            for e in (*call.args, *(kw.value for kw in call.kwargs)):
                variables(e, found)
            names = self.read_vars[id(call)] = tuple(found)
        key: tuple | None
        try:
            key = (id(call), tuple(_typed(env[n]) for n in names))
            hash(key)
        except (KeyError, TypeError):
            key = None
        self.keys[(id(call), id(env))] = (env, key)
        return key

    # -- shapes for $in -----------------------------------------------------
    def reads_in(self, block: BlockDef) -> bool:
        """Whether a template reads `$in` (its body or its parameters' defaults)."""
        return self.reads(block.layer, "in") or any(_expr_reads(p.default, "in") for p in block.params)

    def input_shape(self, inp: Input, layer: CallLayer, path: str) -> Any:
        """`$in` of a block instance reading `inp`: a Shape (a list of them for several inputs), or _EVAL_FAILED."""
        if isinstance(inp, list):
            shapes = [self.input_shape(i, layer, path) for i in inp]
            return _EVAL_FAILED if _EVAL_FAILED in shapes else shapes
        if inp is None or inp == FAILED:
            return _EVAL_FAILED  # reported where it failed (or as a missing input)
        name = inp if isinstance(inp, str) else self.resolver.source(inp)
        if name is None or name not in self.nodes:
            ref = inp.name if isinstance(inp, Ref) else str(inp)
            self.diags.error("unknown-shape", f"the block reads $in, but its input '{ref}' is not known at this "
                             "point", loc=layer.loc, path=path or None,
                             hint="a block that reads $in must come after the layer it reads (no forward reference)")
            return _EVAL_FAILED
        shape = self.node_shape(name)
        if shape is None:
            self.diags.error("unknown-shape", f"the block reads $in, but the shape of its input '{name}' is unknown: "
                             "a shape rule before it failed", loc=layer.loc, path=path or None,
                             hint="fix the fault reported for that node first")
            return _EVAL_FAILED
        if isinstance(shape, Tokens):
            return TokensShape(shape)
        return ChannelsLastShape(shape) if isinstance(shape, ChannelsLast) else Shape(shape)

    def node_shape(self, name: str) -> tuple[int, ...] | None:
        """The output shape of node `name`, worked out once per node (iteratively: chains may be long)."""
        todo = [name]
        busy: set[str] = set()
        while todo:
            n = todo[-1]
            if n in self.shapes:
                todo.pop()
                continue
            node = self.nodes.get(n)
            srcs = [s if isinstance(s, str) else self.resolver.source(s) for s in node.inputs] if node else [None]
            if any(s is None or s not in self.nodes for s in srcs):
                self.shapes[n] = None  # an input that is not (yet) a node
                todo.pop()
                continue
            waiting = [s for s in srcs if s not in self.shapes]
            if waiting and n not in busy:
                busy.add(n)
                todo += waiting  # type: ignore[arg-type]
                continue
            todo.pop()
            assert node is not None
            known = [self.shapes.get(s) for s in srcs]  # type: ignore[arg-type]
            ins: list[tuple[int, ...]] = [i for i in known if i is not None]
            if len(ins) != len(known):  # an input failed (or a cycle): its fault is reported there
                self.shapes[n] = None
                continue
            try:
                self.shapes[n] = REGISTRY[node.op].infer(node.attrs, ins)
            except ShapeError as exc:
                self.shapes[n] = None
                found = exc.found if exc.found is not None else ", ".join(fmt_shape(s) for s in ins)  # type: ignore
                notes = [(node.origin, f"{node.op} written here")] if node.origin and node.origin != node.loc else []
                self.diags.error(exc.code, exc.message, loc=node.loc, path=n, expected=exc.expected, found=found,
                                 hint=exc.hint, notes=notes)
        return self.shapes.get(name)

    # -- helpers ----------------------------------------------------------
    # -- size ---------------------------------------------------------------
    def least(self, layer: Layer, block: str | None = None, depth: int = 0) -> int:
        """How many nodes `layer` expands to at least, capped; worked out from the layer tree alone.

        So a spec whose blocks call each other twice over 40 levels is refused at once, not after
        expanding a million nodes. What may be absent or is not known before expanding counts as
        little as it can: an optional layer (`when:`) 0, a repeat whose count is a variable once, a
        callee read from a variable 1; recursive blocks and blocks nested deeper than MAX_DEPTH
        (both refused where they are used) count nothing.
        """
        if block is not None:
            known = self.least_nodes.get(block)
            if known is not None:
                return known
            if depth > MAX_DEPTH:
                return 0
            self.least_nodes[block] = 0  # while it is worked out: a recursive use counts nothing
        n = 0
        if isinstance(layer, CallLayer):
            called = self.spec.blocks.get(layer.call.name)
            n = self.least(called.layer, called.name, depth + 1) if called is not None else 1
        elif isinstance(layer, SeqLayer):
            n = sum(self.least(item.layer, None, depth) for item in layer.items)
        elif layer.when is not None:
            n = 0
        elif layer.kind in ("body", "splice"):
            assert layer.body is not None
            copies = layer.repeat.value if isinstance(layer.repeat, Lit) and isinstance(layer.repeat.value, int) else 1
            n = max(copies, 1) * self.least(layer.body, None, depth)
        else:
            n = 1 + sum(self.least(b.layer, None, depth) for b in layer.branches)
        n = min(n, MAX_NODES + 1)
        if block is not None:
            self.least_nodes[block] = n
        return n

    def refuse_size(self, need: int, what: str, loc: Location, path: str) -> bool:
        """Report `too-large` (once) if `need` more nodes would pass MAX_NODES."""
        if len(self.nodes) + need <= MAX_NODES:
            return False
        if need > MAX_NODES:
            message = f"{what} more than {MAX_NODES:,} nodes, the limit for a network"
        else:
            message = (f"{what} at least {need:,} nodes, which with the {len(self.nodes):,} before it passes "
                       f"the limit of {MAX_NODES:,} for a network")
        self.diags.error("too-large", message, loc=loc, path=path or None,
                         expected=f"at most {MAX_NODES:,} nodes", hint="check repeat: counts and blocks that "
                         "call other blocks several times")
        self.too_large = True
        return True

    def eval(self, e: Any, env: dict, locate: Any) -> Any:
        try:
            return evaluate(e, env)
        except ExprError as exc:
            hint = exc.hint
            if exc.code == "unknown-variable" and exc.message in ("unknown variable '$in'", "unknown variable '$i'"):
                hint = ("$in is the input's shape inside a block" if "$in" in exc.message else
                        "$i is the copy's index inside a repeat:")
            self.diags.error(exc.code, exc.message, loc=locate(exc.pos), hint=hint, span=exc.span)
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


def _expr_reads(e: Expr | None, var: str) -> bool:
    if e is None:
        return False
    found: dict[str, None] = {}
    variables(e, found)
    return var in found


def _pattern_reads(p: Pattern | None, var: str) -> bool:
    return p is not None and any(not isinstance(part, str) and _expr_reads(part, var) for part in p.parts)


def _reads(layer: Layer | None, var: str) -> bool:
    """Whether the layer tree reads `$var` in its own expressions (not inside the blocks it calls)."""
    if layer is None:
        return False
    if isinstance(layer, CallLayer):
        call = layer.call
        return call.callee_var == var or any(_expr_reads(e, var) for e in (*call.args, *(k.value for k in call.kwargs)))
    if isinstance(layer, SeqLayer):
        return any(_reads(i.layer, var) for i in layer.items)
    return (any(_expr_reads(e, var) for e in (layer.repeat, layer.when, layer.start))
            or _pattern_reads(layer.names, var) or _pattern_reads(layer.name, var)
            or _reads(layer.body, var) or any(_reads(b.layer, var) for b in layer.branches))


def _typed(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return (type(v), tuple(_typed(x) for x in v))
    if isinstance(v, dict):
        return (dict, tuple((k, _typed(x)) for k, x in v.items()))
    return (type(v), v)



def _signature(block: BlockDef) -> str:
    return f"{block.name}({', '.join(p.name for p in block.params)})"


def _defined(block: BlockDef) -> list[tuple[Location, str]]:
    return [(block.loc, f"'{block.name}' is defined here")]


