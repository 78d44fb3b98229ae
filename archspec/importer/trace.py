"""Trace a module with torch.fx and read its module tree back as nested layers.

The tracer stops at the modules an op of the language computes (`leaves.candidate_ops`) and traces
through every other module, recording which module each graph node was made in
(`node.meta["nn_module_stack"]`). `tree` groups the nodes of each module by the child they belong to:
a child module is one item of its parent's body, a function call one item of its own, and an item that
does not read the item before it says what it reads.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass, field
from typing import Any

from ..ops.registry import channel_count
from .leaves import OpCall, Unmapped, candidate_ops, function_op, fused_op, is_leaf, module_op, param_op
from .passes import CALL, fuse_runs, invocation, is_param, mark_params, param_reads, single_outputs, ungroup_partitions


class Refused(Exception):
    """The module cannot be imported: what is missing, where (the submodule's path, file:line).

    Its codes (docs/errors.md): error[import-untraceable] (fx cannot trace a forward),
    error[import-unsupported] (no op computes a module or call, or a structure no spec writes),
    error[import-shape] (the module does not run on the input shape).
    """

    def __init__(self, code: str, path: str, where: str | None, message: str, hint: str | None = None):
        self.code, self.path, self.where, self.message, self.hint = code, path, where, message, hint
        place = f"{where}: " if where else ""
        super().__init__(f"{place}error[{code}] {path or '(the root module)'}: {message}"
                         + (f"\n  = hint: {hint}" if hint else ""))


@dataclass
class Item:
    """One item of a body: a named layer, what it reads (None: the item before), merge inputs by name."""

    name: str
    layer: OpCall | Inst | Body
    src: list[str] | None = None
    args: list[str] | None = None


@dataclass
class Body:
    items: list[Item]
    kind: str = "map"
    """`list` (an nn.Sequential), `map` (named items in order) or `concat` (branches of one input, concatenated)."""


@dataclass
class Inst:
    """One instance of a module class that is neither a leaf nor a container: a template candidate."""

    path: str
    cls: type
    body: Body
    in_c: int | None


@dataclass
class Head:
    name: str
    src: str
    layer: OpCall | Inst | Body


@dataclass
class Tree:
    root: Inst
    heads: list[Head] = field(default_factory=list)
    output: tuple[int, ...] = ()
    head_outputs: dict[str, tuple[int, ...]] = field(default_factory=dict)


def trace(module: Any, input_shape: tuple[int, ...], locate: bool = False) -> Any:
    """The traced graph module of `module` in its current mode, every node's shape in `meta['tensor_meta']`.

    `locate` records the Python stack of every node (for the file and line of a refusal; tracing is
    then several times slower, so it is done again only when something is refused).
    """
    import inspect

    import torch
    import torch.fx as fx

    from .concrete import ConcreteTracer, MetaFailed

    class _Tracer(ConcreteTracer):
        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            return is_leaf(m)

    first = next(iter(inspect.signature(module.forward).parameters), "x")
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    tracer = _Tracer({first: torch.empty(2, *input_shape, device="meta")}, device,
                     autowrap_functions=_op_functions(module))
    tracer.record_stack_traces = locate
    try:
        graph = tracer.trace(module)
    except Exception as exc:  # noqa: BLE001 - any failure of fx is the user's module refusing to trace
        if isinstance(exc, (MetaFailed, AssertionError)) and not _runs(module, input_shape):
            raise _shape_refusal(input_shape, exc) from None  # a call or a shape check refuses the input
        raise _untraceable(module, exc) from None
    _split_chunks(graph)
    _grown_concats(graph)
    gm = fx.GraphModule(module, graph)
    try:
        _shapes(gm, input_shape)
    except Exception as exc:  # noqa: BLE001 - shapes that do not fit are the user's input shape
        raise _shape_refusal(input_shape, exc) from None
    single_outputs(gm.graph)
    mark_params(gm.graph)
    ungroup_partitions(gm)
    fuse_runs(gm.graph, _mapped)
    return gm


def _mapped(node: Any) -> bool:
    """Whether an op computes this call alone."""
    if CALL in node.meta:
        return True
    try:
        function_op(node.target, node.args, node.kwargs, [_shape(a) for a in _flat_inputs(node) if not is_param(a)])
    except (Unmapped, Refused):
        return False
    return True


def _shape_refusal(input_shape: tuple[int, ...], exc: Exception) -> Refused:
    return Refused("import-shape", "", None, f"the module does not run on an input of {list(input_shape)}: "
                   f"{str(exc).splitlines()[0]}", hint="give the input it takes with --input C,H,W")


def _runs(module: Any, input_shape: tuple[int, ...]) -> bool:
    """Whether the module runs on an input of this shape: a random one, or a meta one where the module is on
    the meta device (whose values then are unknown: a forward that reads one fails here too)."""
    import torch

    on_meta = any(t.device.type == "meta" for t in module.state_dict().values())
    try:
        with torch.no_grad():
            if on_meta:
                torch.func.functional_call(module, {}, (torch.empty(2, *input_shape, device="meta"),))
            else:
                module(torch.randn(2, *input_shape))
    except Exception:  # noqa: BLE001 - whatever fails here is the input shape's
        return False
    return True


def chunk(x: Any, chunks: int, index: int, dim: int = 0) -> Any:
    """Part `index` of `x.chunk(chunks, dim)`: what a `chunk` call and an index of its result compute."""
    return x.chunk(chunks, dim)[index]


def _split_chunks(graph: Any) -> None:
    """`a, b = x.chunk(2, dim=1)` as two nodes `chunk(x, 2, 0, 1)` and `chunk(x, 2, 1, 1)`, one per part, so that
    each is one tensor (the `chunk` op's) rather than an index into a tuple."""
    import operator

    import torch

    for node in list(graph.nodes):
        is_chunk = (node.op == "call_method" and node.target == "chunk") or (
            node.op == "call_function" and node.target is torch.chunk)
        if not is_chunk or not node.users or any(u.target is not operator.getitem for u in node.users):
            continue
        args: list[Any] = list(node.args)
        if len(args) < 2:
            continue
        x, chunks = args[0], args[1]
        dim = args[2] if len(args) > 2 else node.kwargs.get("dim", 0)
        for use in list(node.users):
            with graph.inserting_before(use):
                part = graph.call_function(chunk, (x, chunks, use.args[1], dim))
            part.meta = {**node.meta, **use.meta}
            use.replace_all_uses_with(part)
            graph.erase_node(use)
        graph.erase_node(node)


def _grown_concats(graph: Any) -> None:
    """A list that grows by one output at a time and is concatenated at each step (DenseNet: each layer reads
    `torch.cat([x0, y1, ..., yk])` of all earlier outputs) as a chain: the concatenation of the list with
    `yk` added is `cat([previous, yk])`, made right after `yk` in the module that gave `yk`. So each module
    reads one input and gives its input and its new channels, as a spec writes it
    (`out: concat(input, conv2)`); concatenation only copies, so the values are the same.

    Only a concatenation whose list less its last item is that of another one is rewritten; the first of a
    chain of one item (`torch.cat([x0])`) is that item."""
    import torch

    def key(node: Any) -> Any:
        items = node.args[0] if node.args else None
        if node.op != "call_function" or node.target is not torch.cat or not isinstance(items, (list, tuple)):
            return None
        if not items or not all(_is_node_arg(a) for a in items):
            return None
        return tuple(items), tuple(node.args[1:]), tuple(sorted(node.kwargs.items()))

    order = {n: k for k, n in enumerate(graph.nodes)}
    cats = {key(n): n for n in graph.nodes if key(n) is not None}
    now: dict[Any, Any] = {}
    """Each concatenation of a chain to the node that now computes it."""
    for node in list(graph.nodes):
        k = key(node)
        prev = cats.get((k[0][:-1], *k[1:])) if k is not None and len(k[0]) > 1 else None
        if prev is None:
            continue
        last = k[0][-1]
        if prev not in now:
            now[prev] = prev.args[0][0] if len(prev.args[0]) == 1 else prev
        base = now[prev]
        if order.get(base, -1) > order[last]:
            continue
        with graph.inserting_after(last):
            grown = graph.call_function(torch.cat, ([base, last], *node.args[1:]), dict(node.kwargs))
        stack = dict(last.meta.get("nn_module_stack", {}))
        if last.op == "call_module" and stack and list(stack.values())[-1][0] == last.target:
            stack.popitem()  # a leaf's own entry: the new node is made in the module that called it
        grown.meta = {**node.meta, "nn_module_stack": stack}
        order[grown] = order[last]
        now[node] = grown
    for old, new in now.items():
        if old is not new:
            old.replace_all_uses_with(new)
    for old in reversed(list(now)):
        if old is not now[old] and not old.users:
            graph.erase_node(old)


def _is_node_arg(value: Any) -> bool:
    return type(value).__name__ == "Node"


def _op_functions(module: Any) -> tuple[Any, ...]:
    """Python functions of the model's own source files named as an op (`channel_shuffle`): kept as one call
    in the graph, so that the op can be matched against it (and checked on random inputs)."""
    import inspect
    import sys

    from ..ops.registry import REGISTRY

    found: dict[int, Any] = {}
    for m in module.modules():
        for name, value in vars(sys.modules.get(type(m).__module__) or object()).items():
            if name in REGISTRY and inspect.isfunction(value):
                found[id(value)] = value
    return tuple(found.values())


def _shapes(gm: Any, input_shape: tuple[int, ...]) -> None:
    """Run the graph on meta tensors (weights swapped for meta ones for the run), recording each node's shape."""
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    class _Run(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gm = gm

        def forward(self, x: Any) -> Any:
            return ShapeProp(self.gm).propagate(x)

    run = _Run()
    state = {k: torch.empty_like(v, device="meta") for k, v in run.state_dict(keep_vars=True).items()}
    x = torch.empty(2, *input_shape, device="meta")  # two: batch norm in training mode needs more than one value
    torch.func.functional_call(run, state, (x,), strict=False)


def _untraceable(root: Any, exc: Exception) -> Refused:
    """The refusal of a forward fx cannot trace, at the innermost frame of the user's own code."""
    paths = {id(m): p for p, m in root.named_modules()}
    where, path = None, ""
    for frame, line in traceback.walk_tb(exc.__traceback__):
        owner = frame.f_locals.get("self")
        file = frame.f_code.co_filename
        if id(owner) in paths and "/torch/" not in file:
            where, path = f"{file}:{line}", paths[id(owner)]
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return Refused("import-untraceable", path, where, f"torch.fx cannot trace this forward: {reason}",
                   hint="control flow that depends on tensor values cannot be written as a graph; "
                        "make it depend on the module's settings instead")


def _shape(node: Any) -> tuple[int, ...]:
    """The node's output shape without the batch axis; the op's own (`ChannelsLast` after a permute) where the
    node is an op's."""
    if "archspec_shape" in node.meta:
        return node.meta["archspec_shape"]  # type: ignore[no-any-return]
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        raise Refused("import-unsupported", _stack(node)[-1] if _stack(node) else "", _where(node),
                      f"{node.format_node()} gives no tensor", hint="only ops on tensors can be imported")
    return tuple(int(d) for d in meta.shape[1:])


def _stack(node: Any) -> list[str]:
    """The paths of the modules the node was made in, outermost first (a leaf call leaves itself out)."""
    paths = [p for p, _ in node.meta.get("nn_module_stack", {}).values()]
    if node.op == "call_module" and paths and paths[-1] == node.target:
        paths.pop()
    return paths


def _where(node: Any) -> str | None:
    """`file:line` of the user's code that made the node (fx's recorded stack trace, innermost frame)."""
    trace_text = node.stack_trace or ""
    last = None
    for line in trace_text.splitlines():
        line = line.strip()
        if line.startswith('File "'):
            file, _, rest = line[6:].partition('", line ')
            if "/torch/" not in file:
                last = f"{file}:{rest.split(',')[0]}"
    return last


def _flat_inputs(node: Any) -> list[Any]:
    import torch.fx as fx

    out: list[Any] = []
    fx.node.map_arg((node.args, node.kwargs), lambda n: out.append(n))  # type: ignore[func-returns-value]
    return out


def _ancestors(node: Any) -> set[Any]:
    seen: set[Any] = set()
    todo = [node]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        todo.extend(n.all_input_nodes)
    return seen


class _Builder:
    def __init__(self, gm: Any, root: Any):
        self.gm = gm
        self.modules = dict(root.named_modules())
        self.calls: dict[str, int] = {}
        self.root_names: dict[Any, str] | None = None
        self.live: set[Any] = set()
        """The nodes some output depends on (a shape assertion, `torch._assert`, is left out)."""

    def scope(self, depth: int, path: str, nodes: list[Any], source: Any, output: Any) -> Body:
        return _shape_body(self.items(depth, path, nodes, source, output))

    def items(self, depth: int, path: str, nodes: list[Any], source: Any, output: Any) -> list[Item]:
        """The layers of the module at `path` (at nesting `depth`), reading `source`, giving `output`."""
        groups: dict[Any, list[Any]] = {}
        for n in nodes:
            if is_param(n):
                continue
            st = _stack(n)
            key = ("child", st[depth]) if len(st) > depth else ("node", n)
            rel = st[depth][len(path) + 1:] if len(st) > depth and path else key[1]
            if key[0] == "child" and "." in rel:  # a child of a ModuleList iterated here: the list is a layer
                key = ("list", f"{path}.{rel.split('.')[0]}" if path else rel.split(".")[0])
            groups.setdefault(key, []).append(n)
        items: list[Item] = []
        names: dict[Any, str] = {source: "input"}
        prev = source
        for key, members in groups.items():
            inner = set(members)
            outs = [n for n in members if n is output or any(u not in inner and u in self.live for u in n.users)]
            ins = list(dict.fromkeys(a for n in members for a in _flat_inputs(n)
                                     if a not in inner and not is_param(a)))
            first = members[0]
            where_path = key[1] if key[0] == "child" else (_stack(first)[-1] if _stack(first) else path)
            if len(outs) != 1:
                raise Refused("import-unsupported", where_path, _where(first),
                              f"a submodule gives {len(outs)} outputs that others read", hint="only modules with "
                              "one tensor output are imported")
            for a in ins:
                if a not in names:
                    raise Refused("import-unsupported", where_path, _where(first),
                                  f"reads {a.format_node()}, which is neither its input nor a layer before it")
            if key[0] == "child" and self.fused(key[1]):
                added = self.spliced(depth, key[1], members, outs[0], {i.name for i in items})
            else:
                name, layer, merge = self.item(depth, key, members, ins, outs[0])
                added = [Item(_unique(name, {i.name for i in items}), layer)]
                if merge:
                    added[0].args = [names[a] for a in _flat_inputs(first)]
            if added[0].args is None and ins != [prev]:
                added[0].src = [names[a] for a in ins]
            items += added
            names[outs[0]] = added[-1].name
            prev = outs[0]
        if depth == 0 and self.root_names is None:
            self.root_names = names
        if prev is not output:
            raise Refused("import-unsupported", path, None, "the module's output is not its last layer's")
        return items

    def fused(self, path: str) -> bool:
        """Whether the module is an op that holds its own weights and runs children after it (timm's
        BatchNormAct2d: batch norm, then its `act`)."""
        module = self.modules[path]
        return bool(list(module.children())) and bool(list(module.parameters(recurse=False))) and any(
            candidate_ops(c.__name__) for c in type(module).__mro__[1:])

    def spliced(self, depth: int, path: str, members: list[Any], out: Any, taken: set[str]) -> list[Item]:
        """A fused module as its op, named as the module (so its weights keep their keys), then the layers of
        its children, spliced into the enclosing body."""
        module = self.modules[path]
        head = members[0]
        own = {f"{path}.{n}" for n, _ in [*module.named_parameters(recurse=False),
                                          *module.named_buffers(recurse=False)]}
        reads = [a for a in _flat_inputs(head) if a.op != "get_attr"]
        if not reads or not any(a.op == "get_attr" and a.target in own for a in _flat_inputs(head)):
            raise Refused("import-unsupported", path, _where(head), f"{type(module).__name__} does not start with "
                          "the op of its own weights")
        try:
            call = fused_op(module, [_shape(a) for a in reads][:1])
        except Unmapped as exc:
            raise Refused("import-unsupported", path, _where(head), str(exc)) from None
        first = Item(_unique(path.rsplit(".", 1)[-1], taken), call)
        rest = self.items(depth + 1, path, members[1:], head, out) if members[1:] else []
        rename = {"input": first.name}
        used = taken | {first.name}
        for item in rest:
            rename[item.name] = _unique(item.name, used)
            used.add(rename[item.name])
        for item in rest:
            item.name = rename[item.name]
            item.src = [rename[s] for s in item.src] if item.src else item.src
            item.args = [rename[a] for a in item.args] if item.args else item.args
        return [first, *rest]

    def item(self, depth: int, key: Any, members: list[Any], ins: list[Any], out: Any
             ) -> tuple[str, OpCall | Inst | Body, bool]:
        from torch import nn

        if key[0] == "list":
            if len(ins) != 1:
                raise Refused("import-unsupported", key[1], _where(members[0]),
                              f"a list of modules reads {len(ins)} inputs", hint="blocks of one input only")
            return key[1].rsplit(".", 1)[-1], self.scope(depth, key[1], members, ins[0], out), False
        if key[0] == "child":
            path = key[1]
            module = self.modules[path]
            if len(ins) != 1:
                raise Refused("import-unsupported", path, _where(members[0]),
                              f"{type(module).__name__} reads {len(ins)} inputs", hint="blocks of one input only")
            body = self.scope(depth + 1, path, members, ins[0], out)
            name = path.rsplit(".", 1)[-1]
            if type(module) in (nn.Sequential, nn.ModuleList, nn.ModuleDict):
                return name, body, False
            return name, Inst(path, type(module), body, channel_count(_shape(ins[0]))), False
        node = key[1]
        return self.leaf(node)

    def leaf(self, node: Any) -> tuple[str, OpCall, bool]:
        from ..ops.registry import REGISTRY

        ins = [_shape(a) for a in dict.fromkeys(_flat_inputs(node)) if not is_param(a)]
        owner = _stack(node)[-1] if _stack(node) else ""
        try:
            if node.op == "call_module":
                module, owner = self.modules[node.target], node.target
                self.calls[node.target] = self.calls.get(node.target, 0) + 1
                if self.calls[node.target] > 1 and list(module.parameters()):
                    raise Unmapped(f"{type(module).__name__} is called twice: the spec gives each use its own weights")
                call = module_op(module, ins, invocation(node))
                name = node.target.rsplit(".", 1)[-1]
                if self.calls[node.target] > 1:
                    name = f"{name}_{self.calls[node.target] - 1}"
            elif CALL in node.meta:
                call, name = node.meta[CALL], _local(node.name)
            elif any(is_param(a) for a in _flat_inputs(node)):
                call, name = self.param_leaf(node, owner, ins)
            elif node.op in ("call_function", "call_method"):
                call = function_op(node.target, node.args, node.kwargs, ins)
                name = _local(node.name)
            else:
                raise Unmapped(f"{node.op} {node.target}: "
                               + ("a parameter or buffer used directly, not through a module"
                                  if node.op == "get_attr" else "not an op"))
        except Unmapped as exc:
            raise Refused("import-unsupported", owner, _where(node), str(exc),
                          hint="see docs/ops.md for the ops the language has") from None
        _record_layout(node, call, ins)
        return name, call, REGISTRY[call.op].arity is None

    def param_leaf(self, node: Any, owner: str, ins: list[Any]) -> tuple[OpCall, str]:
        """A call on a parameter of the module it is made in (ConvNeXt's `self.layer_scale * x`): the op that
        owns such a tensor on its enclosing scope, named as the parameter, so that its key stays the same."""
        from torch import nn

        root, reads = param_reads(node)
        if root is None or node.op != "call_function":
            count = len({a for a in _flat_inputs(node) if is_param(a)})
            raise Unmapped(f"{node.format_node()} uses {count} parameters or buffers directly, not through "
                           "a module")
        scope, _, attr = root.target.rpartition(".")
        tensor = getattr(self.modules.get(scope), attr, None)
        if scope != owner or not isinstance(tensor, nn.Parameter):
            raise Unmapped(f"{node.format_node()} uses {root.target} directly, not a parameter of the module "
                           f"it is used in ({owner or 'the root module'})")
        return param_op(node.target, node.args, node.kwargs, ins, tensor, root, reads), attr


def _record_layout(node: Any, call: OpCall, ins: list[Any]) -> None:
    """Keep the shape the op gives, which carries the layout (H×W×C after `permute([0, 2, 3, 1])`) that the
    traced shape lacks, so that the ops after it are read as the language reads them."""
    from ..ops.registry import REGISTRY, ShapeError

    op = REGISTRY[call.op]
    try:
        shape = op.infer(op.attrs.model_validate(dict(call.values)), ins)
    except (ShapeError, ValueError, TypeError):
        return
    if tuple(shape) == _shape(node):
        node.meta["archspec_shape"] = shape


def _local(name: str) -> str:
    """fx's node name without the number that makes it unique in the whole graph (`relu_33` → `relu`)."""
    return re.sub(r"_\d+$", "", name).lstrip("_") or "call"  # a private function's name (`_pad`) is no node's


def _unique(name: str, taken: set[str]) -> str:
    out, k = name, 1
    while out in taken or out == "input":
        out, k = f"{name}_{k}", k + 1
    return out


def _shape_body(items: list[Item]) -> Body:
    names = [i.name for i in items]
    if names == [str(k) for k in range(len(items))] and all(i.src is None and i.args is None for i in items):
        return Body(items, "list")
    if not items:
        return Body(items, "map")
    last = items[-1]
    if (len(items) >= 3 and isinstance(last.layer, OpCall) and last.layer.op == "concat"
            and last.args == names[:-1]
            and all(i.args is None and (i.src is None if k == 0 else i.src == ["input"])
                    for k, i in enumerate(items[:-1]))):
        branches = [Item(i.name, i.layer) for i in items[:-1]]
        return Body(branches, "concat")
    return Body(items, "map")


def tree(gm: Any, root: Any) -> Tree:
    """The module tree of a traced module: the body, and the heads (outputs after the first)."""
    nodes = [n for n in gm.graph.nodes if n.op not in ("placeholder", "output")]
    source = next(n for n in gm.graph.nodes if n.op == "placeholder")
    result = next(n for n in gm.graph.nodes if n.op == "output").args[0]
    outputs = _outputs(result)
    main = outputs[0][1]
    keep = _ancestors(main)
    builder = _Builder(gm, root)
    builder.live = set().union(*(_ancestors(out) for _, out in outputs))
    body = builder.scope(0, "", [n for n in nodes if n in keep], source, main)
    t = Tree(Inst("", type(gm), body, None), output=_shape(main))
    for label, out in outputs[1:]:
        members = [n for n in nodes if n in _ancestors(out) and n not in keep]
        head_body = builder.scope(0, "", members, _single_input(members, label), out)
        if len(head_body.items) != 1 or head_body.items[0].src is not None:
            raise Refused("import-unsupported", label, None, "an extra output that is not one submodule's")
        item = head_body.items[0]
        src_node = _single_input(members, label)
        if src_node not in (builder.root_names or {}):
            raise Refused("import-unsupported", label, None, "an extra output read from inside a block")
        t.heads.append(Head(item.name, (builder.root_names or {})[src_node], item.layer))
        t.head_outputs[item.name] = _shape(out)
    return t


def _outputs(result: Any) -> list[tuple[str, Any]]:
    """The graph's outputs: one tensor, or a tuple / named tuple of them (main first)."""
    if isinstance(result, (tuple, list)):
        return [(str(k), r) for k, r in enumerate(result) if r is not None]
    if getattr(result, "op", None) == "call_function" and isinstance(result.target, type):
        fields = getattr(result.target, "_fields", [str(k) for k in range(len(result.args))])
        return [(f, a) for f, a in zip(fields, result.args, strict=False) if a is not None]
    return [("main", result)]


def _single_input(members: list[Any], label: str) -> Any:
    inner = set(members)
    ins = {a for n in members for a in n.all_input_nodes if a not in inner}
    if len(ins) != 1:
        raise Refused("import-unsupported", label, None, "an extra output that reads several layers")
    return ins.pop()
